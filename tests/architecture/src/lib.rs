//! weir-architecture-tests: checks that keep the crate graph in the shape the architecture
//! describes. It has no code of its own; see `tests/`. It must not be depended upon.
