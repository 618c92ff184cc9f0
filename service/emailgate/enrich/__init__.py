"""Contact enrichment: the Cleanlist.ai client and the enrichment of a list of contacts (find a
work email and phone numbers, then verify every found email with the verify pipeline)."""
