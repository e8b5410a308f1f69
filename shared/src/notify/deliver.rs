//! The `event-delivery` function: one signed POST per job, retried with backoff.
