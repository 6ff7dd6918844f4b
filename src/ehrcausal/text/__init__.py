"""Clinical notes: rendering notes from simulated records, and text representations."""
