//! Building copies of the template, one per target (SPEC §3). (Stub.)
