"""Pacing of provider calls: token buckets (in-process and in Redis) and a circuit breaker.

Every pacer answers one question, `reserve(max_wait)`: when may I call, if that is soon enough?
A reservation is taken at once (so concurrent callers queue in order) or not at all.
"""
