//! `pikachu listen`: a tiny webhook receiver for trying pikachu out. It prints each
//! webhook it receives and verifies Standard Webhooks signatures.
