//! Reading and writing typed fields from the raw layer, and the macros that declare the
//! typed structs once so that parsing and writing can never disagree.

use std::fmt::Write as _;

use crate::xml::{Element, cdata_leaf, close_tag, open_tag};

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
    pub(crate) fn missing(tag: &'static str) -> Self {
        Self { tag, reason: "missing".into() }
    }
}

/// A value that lives in a child element of a parent.
pub(crate) trait Field: Sized {
    fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError>;
    /// `None` when the element is absent (numbers: also when it is empty).
    fn read_opt(parent: &Element, tag: &'static str) -> Result<Option<Self>, FieldError> {
        match parent.child(tag) {
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
    fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError> {
        parent.text_of(tag).map(str::to_owned).ok_or_else(|| FieldError::missing(tag))
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

macro_rules! number_field {
    ($($t:ty),*) => {$(
        impl Field for $t {
            fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError> {
                let text = parent.text_of(tag).ok_or_else(|| FieldError::missing(tag))?;
                crate::trim(text).parse().map_err(|e| FieldError {
                    tag,
                    reason: format!("{text:?} is not a {}: {e}", stringify!($t)),
                })
            }
            fn read_opt(parent: &Element, tag: &'static str) -> Result<Option<Self>, FieldError> {
                match parent.text_of(tag) {
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
number_field!(u64, i64, u32, i32, f64);

impl<T: Field> Field for Option<T> {
    fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError> {
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
    fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError> {
        parent.children_named(tag).map(T::from_element).collect()
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
    fn read(parent: &Element, tag: &'static str) -> Result<Self, FieldError> {
        parent
            .children_named(tag)
            .map(|el| {
                el.text
                    .trim()
                    .parse()
                    .map_err(|e| FieldError { tag, reason: format!("{:?} is not a u32: {e}", el.text) })
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
                Ok(Self { $( $field: <$ty as $crate::field::Field>::read(el, $tag)?, )* })
            }
            fn fill(&self, el: &mut $crate::xml::Element) {
                $( $crate::field::write_field!(&self.$field, el, $tag $(, $how)?); )*
            }
            fn fill_xml(&self, out: &mut String) {
                $( $crate::field::write_field_xml!(&self.$field, out, $tag $(, $how)?); )*
            }
        }

        impl $crate::field::Field for $name {
            fn read(parent: &$crate::xml::Element, tag: &'static str) -> Result<Self, $crate::field::FieldError> {
                let el = parent.child(tag).ok_or_else(|| $crate::field::FieldError::missing(tag))?;
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

/// Declares top-level messages and events: a `header` plus the listed fields, read from
/// and written to the document root with `MsgType` (and `Event`) in WeChat's order.
/// Fields are declared as in [`record!`], `[cdata]` marker included.
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

            pub(crate) fn from_root(el: &$crate::xml::Element) -> Result<Self, $crate::field::FieldError> {
                Ok(Self {
                    header: $crate::message::Header::read(el)?,
                    $( $field: <$ty as $crate::field::Field>::read(el, $tag)?, )*
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
