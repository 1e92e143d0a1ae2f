//! The end of each pair of a query string found eight bytes a step in a word, inline, where
//! `memchr` is called through three functions and sets up its vectors first (~55
//! instructions a call under callgrind for what is found 10 to 50 bytes on); past the first
//! 64 bytes `memchr` looks.
//!
//! Tried and not kept (fifteenth pass, BENCHMARKS.md): the same for a leaf's text in the XML
//! reader, where `memchr` looks at the rest of the document and finds the `]]>` or `<` in its
//! first 32-byte vector for fewer instructions (+330 a message), and a tag name's bytes
//! checked eight at a time (+70 a message: `flat_start` no longer inlined).

/// How many bytes are looked at a word at a time before `memchr` takes the rest: what is
/// sought is usually near (a short value's end), and past this `memchr`'s vectors pay for
/// their setting up.
const SHORT: usize = 64;

/// The low bit of every byte.
const LOW: u64 = u64::from_le_bytes([0x01; 8]);

/// The high bit of every byte.
const HIGH: u64 = u64::from_le_bytes([0x80; 8]);

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
