//! The request path as certgate reads it: one normal form, used both to choose the API
//! (SPEC §3 step 1) and as the path forwarded upstream (step 6), so that the API whose
//! settings are evaluated is the API whose upstream acts on the request, with the path
//! that upstream acts on.
//!
//! [`normalize`] is pure (no I/O) and, for the common path (no `%`, no `\`, no `//`, no
//! `.` or `..` segment), a single scan that allocates nothing. Otherwise it
//! - percent-decodes the unreserved characters (RFC 3986 §2.3: `A-Z a-z 0-9 - . _ ~`) and
//!   writes every other escape in upper case (RFC 3986 §6.2.2.1);
//! - removes dot segments (RFC 3986 §5.2.4, after the decoding, so `%2e` counts as `.`);
//! - collapses runs of `/` into one;
//!
//! and refuses what an upstream could read in another way than certgate did:
//! an encoded `/` or `\` (`%2F`, `%5C`), a raw `\`, NUL (raw or `%00`), a double-encoded
//! `.`/`/`/`\`/NUL (`%252E`…: an upstream that decodes twice sees a dot segment or a
//! separator), a dot segment with `;` parameters (`..;x`: Tomcat and Spring strip the
//! parameters and see `..`), a malformed escape, a `..` that would climb above the root,
//! and any target that is not origin-form (`*`, or not starting with `/`).
//!
//! The output never contains an empty, `.` or `..` segment and is a fixed point:
//! `normalize(normalize(p)) == normalize(p)`.

use std::borrow::Cow;

/// Why a request path is refused (answered 400; the reason goes to the log only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form: empty, `*`, or not starting with `/`.
    #[error("the request target is not an absolute path")]
    NotOriginForm,
    /// `%2F` or `%5C`: a separator that only some upstreams see.
    #[error("encoded path separator")]
    EncodedSeparator,
    /// A raw `\` (Windows, IIS and some frameworks read it as `/`).
    #[error("backslash in the path")]
    Backslash,
    /// A NUL byte, raw or `%00`.
    #[error("NUL in the path")]
    Nul,
    /// `%25` followed by the escape of `.`, `/`, `\` or NUL.
    #[error("double-encoded dot, separator or NUL")]
    DoubleEncoded,
    /// A `%` not followed by two hex digits.
    #[error("malformed percent escape")]
    BadEscape,
    /// A `.` or `..` segment carrying `;` parameters.
    #[error("dot segment with parameters")]
    DotSegmentParams,
    /// A `..` segment with nothing left to remove.
    #[error("the path climbs above the root")]
    AboveRoot,
}

/// The normal form of a request path (the part before `?`), or why it is refused.
/// Borrows `path` when it is already normal.
pub fn normalize(path: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    if is_plain(bytes) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode(bytes)?;
    let out = remove_dot_segments(&decoded)?;
    Ok(Cow::Owned(out))
}

/// True when `path` (starting with `/`) has nothing to normalise or refuse: the fast
/// path, one pass, no allocation.
fn is_plain(path: &[u8]) -> bool {
    let mut at_segment_start = false;
    let mut i = 0;
    while i < path.len() {
        let b = path[i];
        match b {
            b'%' | b'\\' | 0 => return false,
            b'/' => {
                if at_segment_start && i > 0 {
                    // `//`
                    return false;
                }
                at_segment_start = true;
                i += 1;
                continue;
            }
            b'.' if at_segment_start => {
                let rest = &path[i..];
                if is_dot_segment_start(rest) {
                    return false;
                }
            }
            _ => {}
        }
        at_segment_start = false;
        i += 1;
    }
    true
}

/// Whether `rest` (at a segment start, beginning with `.`) is a `.` or `..` segment,
/// with or without `;` parameters.
fn is_dot_segment_start(rest: &[u8]) -> bool {
    let segment = rest.split(|&b| b == b'/').next().unwrap_or(rest);
    let name = segment.split(|&b| b == b';').next().unwrap_or(segment);
    name == b"." || name == b".."
}

/// Whether `b` is an unreserved character (RFC 3986 §2.3), decoded when escaped.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The escape at `bytes[i..]` (`%XY`), decoded.
fn escape_at(bytes: &[u8], i: usize) -> Result<u8, PathError> {
    match (bytes.get(i + 1), bytes.get(i + 2)) {
        (Some(&hi), Some(&lo)) => match (hex_value(hi), hex_value(lo)) {
            (Some(hi), Some(lo)) => Ok(hi << 4 | lo),
            _ => Err(PathError::BadEscape),
        },
        _ => Err(PathError::BadEscape),
    }
}

/// Decodes the unreserved escapes, upper-cases the others and refuses the ambiguous
/// bytes and escapes. The result's `%` always starts an upper-case escape of a byte that
/// is not unreserved, `/`, `\` or NUL.
fn decode(bytes: &[u8]) -> Result<Vec<u8>, PathError> {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            0 => return Err(PathError::Nul),
            b'\\' => return Err(PathError::Backslash),
            b'%' => {
                let v = escape_at(bytes, i)?;
                match v {
                    b'/' | b'\\' => return Err(PathError::EncodedSeparator),
                    0 => return Err(PathError::Nul),
                    v if is_unreserved(v) => out.push(v),
                    v => out.extend_from_slice(&[
                        b'%',
                        HEX[usize::from(v >> 4)],
                        HEX[usize::from(v & 15)],
                    ]),
                }
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    // `%25XY` where a second decoding would make a dot or a separator of `%XY`; checked
    // on the output, so that `%25%32%65` (which decodes to `%252e`) counts too.
    let double = out.windows(5).any(|w| {
        w.starts_with(b"%25")
            && matches!(
                // `w[2]` stands for the `%` a first decoding makes of `%25`.
                escape_at(w, 2),
                Ok(b'.' | b'/' | b'\\' | 0)
            )
    });
    if double {
        return Err(PathError::DoubleEncoded);
    }
    Ok(out)
}

/// RFC 3986 §5.2.4 on a decoded path that starts with `/`, with empty segments dropped
/// (`//` collapsed) and `..` above the root refused. A trailing `/`, `/.` or `/..` leaves
/// a trailing `/`, as the RFC's algorithm does.
fn remove_dot_segments(path: &[u8]) -> Result<String, PathError> {
    let mut segments: Vec<&[u8]> = Vec::new();
    let mut trailing_slash = false;
    // Skip the leading `/`: every piece is a segment.
    for segment in path[1..].split(|&b| b == b'/') {
        trailing_slash = false;
        let name = segment.split(|&b| b == b';').next().unwrap_or(segment);
        match segment {
            b"" => trailing_slash = true,
            b"." => trailing_slash = true,
            b".." => {
                if segments.pop().is_none() {
                    return Err(PathError::AboveRoot);
                }
                trailing_slash = true;
            }
            _ if name == b"." || name == b".." => return Err(PathError::DotSegmentParams),
            s => segments.push(s),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    for s in &segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push(b'/');
    }
    // Only ASCII bytes were added or changed; the rest is copied from a `str`.
    String::from_utf8(out).map_err(|_| PathError::BadEscape)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(path: &str) -> Result<String, PathError> {
        normalize(path).map(Cow::into_owned)
    }

    #[test]
    fn plain_paths_are_borrowed() {
        for p in [
            "/",
            "/files",
            "/files/",
            "/files/admin/secret.txt",
            "/a.b/.c/..d/...",
            "/x;y=1/z",
            "/caf\u{e9}",
            "/.well-known/x",
        ] {
            assert!(
                matches!(normalize(p), Ok(Cow::Borrowed(b)) if b == p),
                "{p}"
            );
        }
    }

    #[test]
    fn the_bypass_forms_of_issue_9_normalise_to_the_admin_path() {
        for p in [
            "/files/./admin/secret.txt",
            "/files//admin/secret.txt",
            "/files/x/../admin/secret.txt",
            "/files/%2e/admin/secret.txt",
            "/files/%2E/admin/secret.txt",
            "/files/%61dmin/secret.txt",
            "/files/%61%64%6D%69%6E/secret.txt",
            "/files/x/%2e%2e/admin/secret.txt",
            "/files/x/.%2e/admin/secret.txt",
            "//files///admin//secret.txt",
            "/files/./././admin/./secret.txt",
            "/files/a/b/../../admin/secret.txt",
        ] {
            assert_eq!(n(p).as_deref(), Ok("/files/admin/secret.txt"), "{p}");
        }
    }

    #[test]
    fn refusals() {
        use PathError::*;
        let cases: &[(&str, PathError)] = &[
            ("/files/admin%2Fsecret.txt", EncodedSeparator),
            ("/files/admin%2fsecret.txt", EncodedSeparator),
            ("/files%5Cadmin/secret.txt", EncodedSeparator),
            ("/files%5cadmin", EncodedSeparator),
            ("/files\\admin\\secret.txt", Backslash),
            ("/files/admin/secret.txt%00", Nul),
            ("/files/a\0b", Nul),
            ("/files/%252e%252e/admin", DoubleEncoded),
            ("/files/%252Fadmin", DoubleEncoded),
            ("/files/%255cadmin", DoubleEncoded),
            ("/files/%2500", DoubleEncoded),
            ("/files/%25%32%65%25%32%65/admin", DoubleEncoded),
            ("/files/%252%65", DoubleEncoded),
            ("/files/%zz", BadEscape),
            ("/files/%2", BadEscape),
            ("/files/%", BadEscape),
            ("/files/..;/admin/secret.txt", DotSegmentParams),
            ("/files/.;x/admin", DotSegmentParams),
            ("/files/%2e%2e;/admin", DotSegmentParams),
            ("/..", AboveRoot),
            ("/../files", AboveRoot),
            ("/files/../../etc/passwd", AboveRoot),
            ("/%2e%2e/x", AboveRoot),
            ("*", NotOriginForm),
            ("", NotOriginForm),
            ("files/admin", NotOriginForm),
            ("http://h/x", NotOriginForm),
        ];
        for (p, e) in cases {
            assert_eq!(n(p), Err(*e), "{p:?}");
        }
    }

    #[test]
    fn rfc_3986_dot_segments_and_trailing_slashes() {
        let cases = [
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/a/b/.", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/a/..", "/"),
            ("/.", "/"),
            ("/./", "/"),
            ("//", "/"),
            ("///", "/"),
            ("/a//", "/a/"),
            ("/a/.//b", "/a/b"),
            ("/a/b/../", "/a/"),
        ];
        for (p, want) in cases {
            assert_eq!(n(p).as_deref(), Ok(want), "{p}");
        }
    }

    #[test]
    fn escapes_are_decoded_or_upper_cased() {
        assert_eq!(n("/caf%c3%a9").as_deref(), Ok("/caf%C3%A9"));
        assert_eq!(n("/a%20b").as_deref(), Ok("/a%20b"));
        assert_eq!(n("/%7euser").as_deref(), Ok("/~user"));
        assert_eq!(n("/a%2db%5F").as_deref(), Ok("/a-b_"));
        assert_eq!(n("/100%25").as_deref(), Ok("/100%25"));
        assert_eq!(n("/%2541").as_deref(), Ok("/%2541"));
        assert_eq!(n("/a%3Bb").as_deref(), Ok("/a%3Bb"));
        assert_eq!(n("/a%3fb").as_deref(), Ok("/a%3Fb"));
        // Decoded dots are names like any other when they do not form a whole segment.
        assert_eq!(n("/a/%2e%2e%2e").as_deref(), Ok("/a/..."));
        assert_eq!(n("/a/%2ehidden").as_deref(), Ok("/a/.hidden"));
    }

    /// The segments of a normal path never are empty, `.` or `..` (the `//` of a
    /// trailing slash aside).
    fn assert_normal_shape(out: &str) {
        assert!(out.starts_with('/'), "{out}");
        let body = out.strip_prefix('/').unwrap_or(out);
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return;
        }
        for seg in body.split('/') {
            assert!(!seg.is_empty() && seg != "." && seg != "..", "{out}");
        }
        assert!(!out.contains('\\') && !out.contains('\0'), "{out}");
        assert!(normalize(out).is_ok_and(|c| matches!(c, Cow::Borrowed(_)) || c == out));
    }

    /// Every path over a small alphabet of the interesting pieces, up to four pieces:
    /// normalising is idempotent, and the output has the normal shape.
    #[test]
    fn exhaustive_small_paths_are_idempotent_and_normal() {
        const PIECES: [&str; 16] = [
            "/", "a", ".", "..", "%2e", "%2E%2e", "%61", "%2F", "%5c", "\\", ";x", "%25", "%c3",
            "//", "2", "%65",
        ];
        let mut checked = 0u32;
        let mut stack: Vec<(String, usize)> = vec![("/".to_owned(), 0)];
        while let Some((prefix, depth)) = stack.pop() {
            if let Ok(once) = normalize(&prefix) {
                assert_normal_shape(&once);
                let twice = normalize(&once).map(Cow::into_owned);
                assert_eq!(twice.as_deref(), Ok(once.as_ref()), "{prefix:?}");
                // The fast path agrees with the slow one.
                if is_plain(prefix.as_bytes()) {
                    let slow = decode(prefix.as_bytes()).and_then(|d| remove_dot_segments(&d));
                    assert_eq!(slow.as_deref(), Ok(prefix.as_str()), "{prefix:?}");
                }
            }
            checked += 1;
            if depth < 4 {
                for piece in PIECES {
                    stack.push((format!("{prefix}{piece}"), depth + 1));
                }
            }
        }
        assert!(checked > 10_000, "{checked}");
    }

    #[test]
    fn fast_path_matches_slow_path_on_plain_inputs() {
        for p in [
            "/a/b", "/a.", "/a..", "/.a", "/..a", "/a/b/", "/x;.", "/-_~",
        ] {
            assert!(is_plain(p.as_bytes()), "{p}");
            let slow = remove_dot_segments(&decode(p.as_bytes()).unwrap()).unwrap();
            assert_eq!(slow, p);
        }
        for p in ["/a//b", "/./a", "/a/.", "/a/..", "/a/.;x", "/a%41", "/a\\b"] {
            assert!(!is_plain(p.as_bytes()), "{p}");
        }
    }

    proptest::proptest! {
        /// Random paths over the bytes that matter: normalising twice is normalising
        /// once, and a normal path has no empty, `.` or `..` segment.
        #[test]
        fn normalize_is_idempotent(path in r"/[a./%2356eEfF5cC;\\_~0]{0,24}") {
            if let Ok(once) = normalize(&path) {
                assert_normal_shape(&once);
                let twice = normalize(&once).map(Cow::into_owned);
                proptest::prop_assert_eq!(twice.as_deref(), Ok(once.as_ref()));
            }
        }
    }
}
