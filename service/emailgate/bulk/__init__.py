"""List-cleaning providers behind batch jobs: upload, poll, fetch, delete (one Protocol)."""
