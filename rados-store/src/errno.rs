//! Ceph's negative errno results mapped onto [`StoreError`].

use object_store_trait::StoreError;

/// `ENOENT`: no such object.
pub const ENOENT: i32 = 2;
/// `EEXIST`: exclusive create of an existing object.
pub const EEXIST: i32 = 17;
/// `EINVAL`.
pub const EINVAL: i32 = 22;
/// `ENOSPC`.
pub const ENOSPC: i32 = 28;
/// `ERANGE`: `assert_version` with an older version than the object's.
pub const ERANGE: i32 = 34;
/// `EOVERFLOW`: `journal.guard_append` on a full object, or `assert_version` with a newer
/// version than the object's (a missing object has version 0).
pub const EOVERFLOW: i32 = 75;
/// `EDQUOT`: pool quota reached.
pub const EDQUOT: i32 = 122;
/// `ECANCELED`: a failed `omap_cmp`.
pub const ECANCELED: i32 = 125;

/// Maps a negative errno from librados to a [`StoreError`] (`-ENOENT` → `NotFound`, `-ENOSPC`
/// and `-EDQUOT` → `NoSpace`, `-EINVAL` → `InvalidArgument`, anything else → `Io`).
pub fn map_errno(op: &'static str, oid: &str, errno: i32) -> StoreError {
    let code = errno.checked_neg().unwrap_or(i32::MAX);
    match code {
        ENOENT => StoreError::NotFound {
            oid: oid.to_owned(),
        },
        ENOSPC | EDQUOT => StoreError::NoSpace {
            oid: oid.to_owned(),
        },
        EINVAL => StoreError::InvalidArgument(format!("{op} on {oid:?}: Ceph answered -EINVAL")),
        _ => StoreError::io(op, oid, std::io::Error::from_raw_os_error(code)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errnos_match_the_trait_error_codes() {
        // `StoreError::errno` is the trait crate's statement of Ceph's codes; round-trip through it.
        for (errno, want) in [
            (-ENOENT, -2),
            (-ENOSPC, -28),
            (-EINVAL, -22),
            (-5, -5),
            (-110, -110),
        ] {
            assert_eq!(map_errno("op", "o", errno).errno(), want, "errno {errno}");
        }
        assert!(map_errno("op", "o", -ENOENT).is_not_found());
        assert!(matches!(
            map_errno("op", "o", -EDQUOT),
            StoreError::NoSpace { .. }
        ));
    }
}
