//! Response shaping on sonic-rs: projection (target -> allow|deny -> mapping -> group), merge,
//! flatmap. OWNER: json helper (issue 3).
