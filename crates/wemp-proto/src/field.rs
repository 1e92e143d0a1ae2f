//! Reading and writing typed fields from the raw layer, and the macros that declare the
//! typed structs once so that parsing and writing can never disagree.

use std::fmt::Write as _;

use crate::xml::{Element, cdata_leaf, close_tag, open_tag};

/// A field's tag: its name, and the slot a flat message's leaves ([`crate::xml::Leaves`])
/// look it up by, worked out from the name when the program is compiled ([`tag!`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tag {
    /// The element's name.
    pub(crate) name: &'static str,
    /// [`crate::xml::slot_of`] the name.
    pub(crate) slot: usize,
}

impl Tag {
    pub(crate) const fn new(name: &'static str) -> Self {
        Self { name, slot: crate::xml::slot_of(name) }
    }
}

/// The [`Tag`] of a name, built when the program is compiled.
macro_rules! tag {
    ($name:literal) => {
        const { $crate::field::Tag::new($name) }
    };
}
pub(crate) use tag;

/// Where fields are read from: an element's children — a document's root for a message's
/// own fields — or the leaves of a flat document ([`crate::xml::Leaves`]), which answer as
/// its document's root would. The typed readers ([`top_level!`], [`record!`], the header)
/// read through it and nothing else, so one reader serves both.
pub(crate) trait Fields {
    /// The text of the first child named `tag` (as [`Element::text_of`]).
    fn text(&self, tag: Tag) -> Option<&str>;
    /// The children among which the elements named `tag` (nested records, repeated
    /// elements) are looked for. An error where there are none to give: a flat document's
    /// leaf named `tag` has no tree (its document is read instead).
    fn children(&self, tag: Tag) -> Result<&[Element], FieldError>;
}

impl Fields for Element {
    fn text(&self, tag: Tag) -> Option<&str> {
        self.text_of(tag.name)
    }
    fn children(&self, _tag: Tag) -> Result<&[Element], FieldError> {
        Ok(&self.children)
    }
}

/// The first of `children` named `tag`.
pub(crate) fn first(children: &[Element], tag: Tag) -> Option<&Element> {
    children.iter().find(|c| c.name == tag.name)
}

/// A required field is missing or does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("<{tag}>: {reason}")]
pub struct FieldError {
    /// The element at fault.
    pub tag: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

impl FieldError {
    #[cold]
    pub(crate) fn missing(tag: &'static str) -> Self {
        Self { tag, reason: "missing".into() }
    }

    /// `text` does not parse as a `ty`.
    #[cold]
    fn not_a(tag: Tag, text: &str, ty: &str, e: impl std::fmt::Display) -> Self {
        Self { tag: tag.name, reason: format!("{text:?} is not a {ty}: {e}") }
    }
}

/// A value that lives in a child element of a parent.
pub(crate) trait Field: Sized {
    fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError>;
    /// `None` when the element is absent (numbers: also when it is empty).
    #[inline(always)]
    fn read_opt(parent: &impl Fields, tag: Tag) -> Result<Option<Self>, FieldError> {
        match parent.text(tag) {
            None => Ok(None),
            Some(_) => Self::read(parent, tag).map(Some),
        }
    }
    fn write(&self, parent: &mut Element, tag: &'static str);
    /// Appends the XML of what [`Field::write`] adds to a parent — the same bytes
    /// [`Element::write_to`] writes for it — without building an element.
    fn write_xml(&self, out: &mut String, tag: &'static str);
}

/// A leaf value that can also be written as CDATA text: the `[cdata]` field marker of
/// [`record!`] and [`top_level!`], for the numbers WeChat sends as CDATA (those inside
/// `SendLocationInfo`, for one). Reading is unchanged: numbers parse from either form.
pub(crate) trait CdataField: Field {
    fn write_cdata(&self, parent: &mut Element, tag: &'static str);
    /// [`CdataField::write_cdata`] as [`Field::write_xml`] is to [`Field::write`].
    fn write_cdata_xml(&self, out: &mut String, tag: &'static str);
}

/// A struct that is read from and written to one element.
pub(crate) trait Record: Sized {
    fn from_element(el: &Element) -> Result<Self, FieldError>;
    fn fill(&self, el: &mut Element);
    /// Appends the XML of the children [`Record::fill`] adds.
    fn fill_xml(&self, out: &mut String);
}

impl Field for String {
    #[inline(always)]
    fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError> {
        parent.text(tag).map(str::to_owned).ok_or_else(|| FieldError::missing(tag.name))
    }
    fn write(&self, parent: &mut Element, tag: &'static str) {
        parent.children.push(Element::cdata(tag, self.as_str()));
    }
    fn write_xml(&self, out: &mut String, tag: &'static str) {
        cdata_leaf(out, tag, self);
    }
}

impl CdataField for String {
    fn write_cdata(&self, parent: &mut Element, tag: &'static str) {
        self.write(parent, tag);
    }
    fn write_cdata_xml(&self, out: &mut String, tag: &'static str) {
        self.write_xml(out, tag);
    }
}

/// `text` as `str::parse` reads it as an integer: WeChat's numbers (up to 19 ASCII digits and
/// nothing else) by [`digits`], where `parse` takes ~12 instructions a digit (a message's
/// `CreateTime` has 10 and its `MsgId` 19); anything else by `parse`.
pub(crate) fn parse_int<T: std::str::FromStr + TryFrom<u64>>(text: &str) -> Result<T, T::Err> {
    if let Some(n) = digits(text.as_bytes())
        && let Ok(n) = T::try_from(n)
    {
        return Ok(n);
    }
    text.parse()
}

/// The value of 1 to 19 ASCII digits (below 10^19, so it fits), `None` for anything else: the
/// first `len % 8` a byte at a time, then eight at a step ([`eight_digits`]).
fn digits(bytes: &[u8]) -> Option<u64> {
    if !(1..=19).contains(&bytes.len()) {
        return None;
    }
    let (head, words) = bytes.split_at(bytes.len() % 8);
    let mut n = 0u64;
    for &b in head {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + u64::from(d);
    }
    for word in words.chunks_exact(8) {
        n = n * 100_000_000 + eight_digits(u64::from_le_bytes(word.try_into().ok()?))?;
    }
    Some(n)
}

/// The value of eight ASCII digits, the first in the lowest byte (`None` when a byte is not a
/// digit): pairs, then fours, then the eight combined by multiplications.
fn eight_digits(word: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    // Each byte 0x30 to 0x3F, and below 0x3A (adding 6 then carries into the high half
    // otherwise; no byte can carry into the next once the first test holds).
    if word & (ONES * 0xF0) != ONES * 0x30 || word.wrapping_add(ONES * 6) & (ONES * 0xF0) != ONES * 0x30 {
        return None;
    }
    let d = word - ONES * 0x30;
    // Each even byte: its digit times ten plus the next one's (at most 99).
    let pairs = d * 10 + (d >> 8);
    const PAIRS: u64 = 0x0000_00FF_0000_00FF;
    let eight = (pairs & PAIRS)
        .wrapping_mul(100 + (1_000_000 << 32))
        .wrapping_add(((pairs >> 16) & PAIRS).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(eight)
}

/// `text` as `str::parse` reads it (for the numbers [`parse_int`] does not read).
fn parse_any<T: std::str::FromStr>(text: &str) -> Result<T, T::Err> {
    text.parse()
}

macro_rules! number_field {
    ($parse:ident: $($t:ty),*) => {$(
        impl Field for $t {
            #[inline(always)]
            fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError> {
                let text = parent.text(tag).ok_or_else(|| FieldError::missing(tag.name))?;
                $parse(crate::trim(text)).map_err(|e| FieldError::not_a(tag, text, stringify!($t), e))
            }
            #[inline(always)]
            fn read_opt(parent: &impl Fields, tag: Tag) -> Result<Option<Self>, FieldError> {
                match parent.text(tag) {
                    None => Ok(None),
                    Some(text) if crate::trim(text).is_empty() => Ok(None),
                    Some(_) => Self::read(parent, tag).map(Some),
                }
            }
            fn write(&self, parent: &mut Element, tag: &'static str) {
                parent.children.push(Element::bare(tag, self.to_string()));
            }
            fn write_xml(&self, out: &mut String, tag: &'static str) {
                // A number's `Display` has nothing to escape: written as it is.
                open_tag(out, tag);
                let _ = write!(out, "{self}");
                close_tag(out, tag);
            }
        }

        impl CdataField for $t {
            fn write_cdata(&self, parent: &mut Element, tag: &'static str) {
                parent.children.push(Element::cdata(tag, self.to_string()));
            }
            fn write_cdata_xml(&self, out: &mut String, tag: &'static str) {
                // Never empty, and no `]]>` in a number: one CDATA section.
                open_tag(out, tag);
                out.push_str("<![CDATA[");
                let _ = write!(out, "{self}");
                out.push_str("]]>");
                close_tag(out, tag);
            }
        }
    )*};
}
number_field!(parse_int: u64, i64, u32, i32);
number_field!(parse_any: f64);

impl<T: Field> Field for Option<T> {
    #[inline(always)]
    fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError> {
        T::read_opt(parent, tag)
    }
    fn write(&self, parent: &mut Element, tag: &'static str) {
        if let Some(value) = self {
            value.write(parent, tag);
        }
    }
    fn write_xml(&self, out: &mut String, tag: &'static str) {
        if let Some(value) = self {
            value.write_xml(out, tag);
        }
    }
}

impl<T: CdataField> CdataField for Option<T> {
    fn write_cdata(&self, parent: &mut Element, tag: &'static str) {
        if let Some(value) = self {
            value.write_cdata(parent, tag);
        }
    }
    fn write_cdata_xml(&self, out: &mut String, tag: &'static str) {
        if let Some(value) = self {
            value.write_cdata_xml(out, tag);
        }
    }
}

/// Repeated elements (`<item>`, `<List>`): zero, one or many.
impl<T: Record> Field for Vec<T> {
    fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError> {
        parent.children(tag)?.iter().filter(|c| c.name == tag.name).map(T::from_element).collect()
    }
    fn write(&self, parent: &mut Element, tag: &'static str) {
        for item in self {
            let mut el = Element::new(tag);
            item.fill(&mut el);
            parent.children.push(el);
        }
    }
    fn write_xml(&self, out: &mut String, tag: &'static str) {
        for item in self {
            open_tag(out, tag);
            item.fill_xml(out);
            close_tag(out, tag);
        }
    }
}

/// Repeated numeric leaves (`<fail_idx>1</fail_idx><fail_idx>2</fail_idx>`).
impl Field for Vec<u32> {
    fn read(parent: &impl Fields, tag: Tag) -> Result<Self, FieldError> {
        parent
            .children(tag)?
            .iter()
            .filter(|c| c.name == tag.name)
            .map(|el| {
                el.text.trim().parse().map_err(|e| FieldError {
                    tag: tag.name,
                    reason: format!("{:?} is not a u32: {e}", el.text),
                })
            })
            .collect()
    }
    fn write(&self, parent: &mut Element, tag: &'static str) {
        for n in self {
            parent.children.push(Element::bare(tag, n.to_string()));
        }
    }
    fn write_xml(&self, out: &mut String, tag: &'static str) {
        for n in self {
            n.write_xml(out, tag);
        }
    }
}

/// Writes one declared field: `Field::write`, or `CdataField::write_cdata` for a field
/// marked `[cdata]`.
macro_rules! write_field {
    ($value:expr, $el:expr, $tag:literal) => {
        $crate::field::Field::write($value, $el, $tag)
    };
    ($value:expr, $el:expr, $tag:literal, cdata) => {
        $crate::field::CdataField::write_cdata($value, $el, $tag)
    };
}

/// [`write_field!`] straight to XML: `Field::write_xml`, or `CdataField::write_cdata_xml`.
macro_rules! write_field_xml {
    ($value:expr, $out:expr, $tag:literal) => {
        $crate::field::Field::write_xml($value, $out, $tag)
    };
    ($value:expr, $out:expr, $tag:literal, cdata) => {
        $crate::field::CdataField::write_cdata_xml($value, $out, $tag)
    };
}

/// Declares nested structs read from one element each.
///
/// A field is `"Tag" => name: Type,`; a trailing `[cdata]` (`"Tag" => name: f64 [cdata],`)
/// writes a number as CDATA text instead of bare, as WeChat does for that element.
macro_rules! record {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* $tag:literal => $field:ident : $ty:ty $([$how:ident])?, )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        #[non_exhaustive]
        pub struct $name {
            $( $(#[$fmeta])* #[doc = concat!("\n\nXML: `<", $tag, ">`.")] pub $field: $ty, )*
        }

        impl $crate::field::Record for $name {
            fn from_element(el: &$crate::xml::Element) -> Result<Self, $crate::field::FieldError> {
                Ok(Self { $( $field: <$ty as $crate::field::Field>::read(el, $crate::field::tag!($tag))?, )* })
            }
            fn fill(&self, el: &mut $crate::xml::Element) {
                $( $crate::field::write_field!(&self.$field, el, $tag $(, $how)?); )*
            }
            fn fill_xml(&self, out: &mut String) {
                $( $crate::field::write_field_xml!(&self.$field, out, $tag $(, $how)?); )*
            }
        }

        impl $crate::field::Field for $name {
            fn read(
                parent: &impl $crate::field::Fields,
                tag: $crate::field::Tag,
            ) -> Result<Self, $crate::field::FieldError> {
                let el = $crate::field::first(parent.children(tag)?, tag)
                    .ok_or_else(|| $crate::field::FieldError::missing(tag.name))?;
                <Self as $crate::field::Record>::from_element(el)
            }
            fn write(&self, parent: &mut $crate::xml::Element, tag: &'static str) {
                let mut el = $crate::xml::Element::new(tag);
                $crate::field::Record::fill(self, &mut el);
                parent.children.push(el);
            }
            fn write_xml(&self, out: &mut String, tag: &'static str) {
                $crate::xml::open_tag(out, tag);
                $crate::field::Record::fill_xml(self, out);
                $crate::xml::close_tag(out, tag);
            }
        }
    )*};
}

/// Declares top-level messages and events: a `header` plus the listed fields, read from a
/// document's root or a flat document's leaves (through [`Fields`]) and written to the
/// document root with `MsgType` (and `Event`) in WeChat's order. Fields are declared as in
/// [`record!`], `[cdata]` marker included. This is the only place a type's fields are listed.
macro_rules! top_level {
    ($(
        $(#[$meta:meta])*
        pub struct $name:ident [$msg_type:literal $(, $event:literal)?] {
            $( $(#[$fmeta:meta])* $tag:literal => $field:ident : $ty:ty $([$how:ident])?, )*
        }
    )*) => {$(
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        #[non_exhaustive]
        pub struct $name {
            /// Sender, receiver and time.
            #[serde(flatten)]
            pub header: $crate::message::Header,
            $( $(#[$fmeta])* #[doc = concat!("\n\nXML: `<", $tag, ">`.")] pub $field: $ty, )*
        }

        impl $name {
            /// The `MsgType` this struct is sent with.
            pub const MSG_TYPE: &'static str = $msg_type;

            /// The tags of its fields after the header, as declared (for tests that build
            /// every type's XML).
            #[cfg(test)]
            pub(crate) const TAGS: &'static [&'static str] = &[$($tag),*];

            /// The value `fields` hold: every required field there and decoding.
            pub(crate) fn read(fields: &impl $crate::field::Fields) -> Result<Self, $crate::field::FieldError> {
                Ok(Self {
                    header: $crate::message::Header::read(fields)?,
                    $( $field: <$ty as $crate::field::Field>::read(fields, $crate::field::tag!($tag))?, )*
                })
            }

            /// Writes the value back as WeChat's XML.
            pub fn to_xml(&self) -> String {
                self.to_element().to_xml()
            }

            /// The value as a raw element tree.
            pub fn to_element(&self) -> $crate::xml::Element {
                let mut el = self.header.to_root(Self::MSG_TYPE);
                $( el.children.push($crate::xml::Element::cdata("Event", $event)); )?
                $( $crate::field::write_field!(&self.$field, &mut el, $tag $(, $how)?); )*
                el
            }
        }
    )*};
}

pub(crate) use record;
pub(crate) use top_level;
pub(crate) use write_field;
pub(crate) use write_field_xml;

/// Serializes a 64-bit id as a JSON string: `MsgId` exceeds 2^53, past which JavaScript
/// (and every JSON reader that uses doubles) rounds numbers.
pub(crate) fn u64_as_string<S: serde::Serializer>(id: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(id)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{any, prop_assert_eq, proptest};

    use super::parse_int;

    /// `parse_int` reads as `str::parse` does, to the same value or the same error.
    fn as_parse_does(text: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        prop_assert_eq!(parse_int::<u64>(text), text.parse::<u64>());
        prop_assert_eq!(parse_int::<i64>(text), text.parse::<i64>());
        prop_assert_eq!(parse_int::<u32>(text), text.parse::<u32>());
        prop_assert_eq!(parse_int::<i32>(text), text.parse::<i32>());
        Ok(())
    }

    #[test]
    fn eight_digits_at_a_step() {
        // Every digit at every place, and every byte at every place among digits.
        for len in 1..=19 {
            for at in 0..len {
                for fill in [b'0', b'9'] {
                    for b in 0..=255u8 {
                        let mut text = vec![fill; len];
                        text[at] = b;
                        let expected = std::str::from_utf8(&text)
                            .ok()
                            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|t| t.parse::<u64>().ok());
                        assert_eq!(super::digits(&text), expected, "{text:?}");
                    }
                }
            }
        }
        assert_eq!(super::digits(b""), None);
        assert_eq!(super::digits(b"01234567890123456789"), None);
    }

    #[test]
    fn integers_read_as_parse_reads_them() {
        for text in [
            "",
            "0",
            "007",
            "1700000000",
            "4294967295",
            "4294967296",
            "9223372036854775807",
            "9223372036854775808",
            "6054768590064713728",
            "9999999999999999999",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999",
            "+1",
            "-1",
            " 1",
            "1 ",
            "1a",
            "٣",
            ":",
            "1:",
            "/1",
            "12/3",
            "１",
        ] {
            as_parse_does(text).unwrap();
        }
    }

    proptest! {
        #[test]
        fn digits_read_as_parse_reads_them(text in "[+-]?[0-9]{0,21}") {
            as_parse_does(&text)?;
        }

        /// Digits and the bytes around them in ASCII (`/` and `:`).
        #[test]
        fn near_digits_read_as_parse_reads_them(text in "[/-:]{0,20}") {
            as_parse_does(&text)?;
        }

        #[test]
        fn any_text_reads_as_parse_reads_it(text in any::<String>()) {
            as_parse_does(&text)?;
        }
    }
}
