//! sagas
