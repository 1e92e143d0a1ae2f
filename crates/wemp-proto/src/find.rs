//! Bytes looked at eight a step in a word, inline: the end of each pair of a query (where
//! `memchr` is called through three functions and sets up its vectors first, ~55
//! instructions a call under callgrind for what is found 10 to 50 bytes on; past the first
//! 64 bytes `memchr` looks), and a tag name's bytes.
//!
//! Not for a leaf's text: there `memchr` looks at the rest of the document, 32 bytes a
//! vector, and finds a `]]>` or a `<` in its first vector for fewer instructions than words
//! of eight bytes do (tried: +330 instructions a message).

/// How many bytes are looked at a word at a time before `memchr` takes the rest: what is
/// sought is usually near (a short value's end), and past this `memchr`'s vectors pay for
/// their setting up.
const SHORT: usize = 64;

/// The low bit of every byte.
const LOW: u64 = u64::from_le_bytes([0x01; 8]);

/// The high bit of every byte.
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

/// Repeats a byte in every byte of a word.
const fn bytes_of(b: u8) -> u64 {
    LOW * b as u64
}

/// The high bit of each byte of `word` set where the byte is an ASCII letter, digit or `_`.
#[inline(always)]
fn name_marks(word: u64) -> u64 {
    let seven = word & !HIGH;
    // For bytes below 0x80, the high bit set where the byte is in `lo..=hi` (no carry
    // crosses a byte: each sum stays below 0x100).
    let within = |x: u64, lo: u8, hi: u8| (x + bytes_of(0x80 - lo)) & !(x + bytes_of(0x7f - hi));
    let digit = within(seven, b'0', b'9');
    // `| 0x20` maps `A`-`Z` onto `a`-`z`, and nothing else into them.
    let letter = within(seven | bytes_of(0x20), b'a', b'z');
    // Exactly the bytes equal to `_` (no borrow: the sum is below 0x100 in each byte).
    let other = seven ^ bytes_of(b'_');
    let underscore = !((other + bytes_of(0x7f)) | other);
    (digit | letter | underscore) & !word & HIGH
}

/// How many bytes at the start of `bytes` are ASCII letters, digits or `_` (a tag name's
/// bytes after its first), eight a step: a table look-up a byte cost ~12 instructions a byte.
#[inline]
pub(crate) fn name_len(bytes: &[u8]) -> usize {
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let others = !name_marks(u64::from_le_bytes(word.try_into().unwrap_or_default())) & HIGH;
        if others != 0 {
            return at + lowest(others);
        }
        at += 8;
    }
    let rest = &bytes[at..];
    at + rest.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'_')).unwrap_or(rest.len())
}

/// The high bit of the first byte of `word` (its lowest) equal to `needle`'s byte, and
/// perhaps of later ones (a borrow past a match may mark the byte above it): only the lowest
/// mark is exact.
#[inline(always)]
fn marks(word: u64, needle: u8) -> u64 {
    let x = word ^ (LOW * u64::from(needle));
    x.wrapping_sub(LOW) & !x & HIGH
}

/// The byte index of the lowest mark.
#[inline(always)]
fn lowest(marks: u64) -> usize {
    // At most 63 / 8.
    (marks.trailing_zeros() / 8) as usize
}

/// Where `needle` first is in `haystack`, as `memchr::memchr` answers.
#[inline]
pub(crate) fn byte(needle: u8, haystack: &[u8]) -> Option<usize> {
    let head = haystack.get(..SHORT).unwrap_or(haystack);
    let mut words = head.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let found = marks(u64::from_le_bytes(word.try_into().unwrap_or_default()), needle);
        if found != 0 {
            return Some(at + lowest(found));
        }
        at += 8;
    }
    if haystack.len() > SHORT {
        return memchr::memchr(needle, &haystack[SHORT..]).map(|i| SHORT + i);
    }
    words.remainder().iter().position(|&b| b == needle).map(|i| at + i)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::any;
    use proptest::{collection, prop_assert_eq, proptest};

    /// The needle alone at every place of haystacks of every length to 150, the others a
    /// byte either side of it.
    #[test]
    fn every_place() {
        for len in 0..150 {
            for at in 0..=len {
                let mut haystack = vec![b'='; len];
                haystack.iter_mut().skip(at + 1).step_by(2).for_each(|b| *b = b'?');
                if let Some(b) = haystack.get_mut(at) {
                    *b = b'>';
                }
                let want = (at < len).then_some(at);
                assert_eq!(super::byte(b'>', &haystack), want, "{len} {at}");
            }
        }
    }

    /// Every byte at every place of names of every length to 20, and the bytes after.
    #[test]
    fn name_len_stops_at_the_first_other_byte() {
        for len in 0..20 {
            for at in 0..=len {
                for b in 0..=255u8 {
                    let mut bytes = b"aZ_09zA9_Za0_xyzXYZ0"[..len].to_vec();
                    if let Some(x) = bytes.get_mut(at) {
                        *x = b;
                    }
                    let want =
                        bytes.iter().position(|&b| !(b.is_ascii_alphanumeric() || b == b'_')).unwrap_or(len);
                    assert_eq!(super::name_len(&bytes), want, "{bytes:?}");
                }
            }
        }
    }

    proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        /// Haystacks short and long (up to 150 bytes) of few distinct bytes, so that needles
        /// occur at every place, more than once, next to each other, with bytes one above or
        /// below them (a borrow's false marks) and with `0x80`/`0xff` around them.
        #[test]
        fn byte_is_memchr(
            haystack in collection::vec(proptest::sample::select(vec![0u8, 1, b'&', b'\'', b'%', 0x7f, 0x80, 0x81, 0xff]), 0..150),
            needle in proptest::sample::select(vec![0u8, 1, b'&', b'\'', 0x80, 0xff]),
        ) {
            prop_assert_eq!(super::byte(needle, &haystack), memchr::memchr(needle, &haystack));
        }

        #[test]
        fn byte_is_memchr_on_any_bytes(haystack in collection::vec(any::<u8>(), 0..150), needle in any::<u8>()) {
            prop_assert_eq!(super::byte(needle, &haystack), memchr::memchr(needle, &haystack));
        }
    }
}
