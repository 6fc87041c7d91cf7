//! `replicate sandbox`: an in-memory emulation of the Airbyte public API. (Stub.)
