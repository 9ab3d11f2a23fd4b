//! Property tests for the codec: no input panics it, and chunked encoding round-trips.
