//! A bound on what a YAML document holds once its aliases are expanded ("billion laughs").
//!
//! `serde_yaml` stops after 100 alias jumps per event of the document, but a jump may replay a
//! large subtree or a long string: a 24 KB plan whose `exclude` lists alias a long string, inside
//! targets that are themselves aliased, expands to a gigabyte. [`Budgeted`] wraps the deserializer
//! and counts every value it hands out (scalars, sequences, mappings) and the bytes of every
//! string, aliases expanded, and fails the parse as soon as either passes its [`Budget`].
//! Without aliases a document holds at most about one value per byte and less text than its
//! size, so the budget only ever stops aliases. The same wrapper is where [`super::keys`] reads
//! the keys of structs, when a parse logs them.

use super::keys::{self, KeyLog};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use std::cell::Cell;
use std::fmt;

/// How many values aliases may add beyond one per byte of the document.
pub(super) const EXTRA_VALUES: u64 = 1_000_000;

/// What a document may hold, aliases expanded, and what it has used so far.
pub(super) struct Budget {
    max_values: u64,
    max_text: u64,
    values: Cell<u64>,
    text: Cell<u64>,
}

impl Budget {
    /// For a document of `len` bytes: one value per byte plus [`EXTRA_VALUES`], and as much text
    /// as the document plus `max_file_bytes` (the input-file size limit).
    pub(super) fn new(len: usize, max_file_bytes: u64) -> Self {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        Self {
            max_values: len.saturating_add(EXTRA_VALUES),
            max_text: len.saturating_add(max_file_bytes),
            values: Cell::new(0),
            text: Cell::new(0),
        }
    }

    pub(super) fn spend<E: de::Error>(&self, text: usize) -> Result<(), E> {
        let values = self.values.get() + 1;
        let text = self
            .text
            .get()
            .saturating_add(u64::try_from(text).unwrap_or(u64::MAX));
        self.values.set(values);
        self.text.set(text);
        if values > self.max_values {
            return Err(E::custom(format_args!(
                "aliases (`*name`) expand this document past {} values (one per byte of the file \
                 plus {EXTRA_VALUES}, a fixed limit); write the repeated values out instead",
                self.max_values
            )));
        }
        if text > self.max_text {
            return Err(E::custom(format_args!(
                "aliases (`*name`) expand this document past {} bytes of text (the file's size \
                 plus the input-file limit, which {} raises); write the repeated values out \
                 instead",
                self.max_text,
                crate::input::MAX_BYTES_ENV
            )));
        }
        Ok(())
    }
}

/// A deserializer that spends from a [`Budget`] for every value it produces, and, given a
/// [`KeyLog`], reads the keys of every struct through it ([`keys::next_known_key`]).
pub(super) struct Budgeted<'b, D> {
    inner: D,
    budget: &'b Budget,
    keys: Option<&'b KeyLog>,
}

impl<'b, D> Budgeted<'b, D> {
    pub(super) fn new(inner: D, budget: &'b Budget, keys: Option<&'b KeyLog>) -> Self {
        Self {
            inner,
            budget,
            keys,
        }
    }

    fn wrap<T>(&self, inner: T) -> Counted<'b, T> {
        Counted {
            inner,
            budget: self.budget,
            keys: self.keys,
            fields: None,
        }
    }
}

/// The visitor side: spends, then hands the value on. `fields` is set on the visitor of a
/// struct, and on its map, when keys are logged.
struct Counted<'b, V> {
    inner: V,
    budget: &'b Budget,
    keys: Option<&'b KeyLog>,
    fields: Option<&'static [&'static str]>,
}

impl<'b, V> Counted<'b, V> {
    fn wrap<T>(&self, inner: T) -> Counted<'b, T> {
        Counted {
            inner,
            budget: self.budget,
            keys: self.keys,
            fields: None,
        }
    }

    fn deserializer<D>(&self, inner: D) -> Budgeted<'b, D> {
        Budgeted::new(inner, self.budget, self.keys)
    }
}

macro_rules! forward_deserialize {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let visitor = self.wrap(visitor);
            self.inner.$method(visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Budgeted<'_, D> {
    type Error = D::Error;

    forward_deserialize!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any,
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let mut visitor = self.wrap(visitor);
        visitor.fields = self.keys.map(|_| fields);
        self.inner.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        let visitor = self.wrap(visitor);
        self.inner.deserialize_enum(name, variants, visitor)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The bytes of text a scalar holds; 0 for numbers and booleans.
trait TextLen {
    fn text_len(&self) -> usize {
        0
    }
}

impl TextLen for bool {}
impl TextLen for i8 {}
impl TextLen for i16 {}
impl TextLen for i32 {}
impl TextLen for i64 {}
impl TextLen for i128 {}
impl TextLen for u8 {}
impl TextLen for u16 {}
impl TextLen for u32 {}
impl TextLen for u64 {}
impl TextLen for u128 {}
impl TextLen for f32 {}
impl TextLen for f64 {}

impl TextLen for char {
    fn text_len(&self) -> usize {
        self.len_utf8()
    }
}

impl TextLen for str {
    fn text_len(&self) -> usize {
        self.len()
    }
}

impl TextLen for [u8] {
    fn text_len(&self) -> usize {
        self.len()
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.budget.spend::<E>(v.text_len())?;
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Counted<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.budget.spend::<E>(0)?;
        self.inner.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.budget.spend::<E>(0)?;
        self.inner.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let d = self.deserializer(d);
        self.inner.visit_some(d)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let d = self.deserializer(d);
        self.inner.visit_newtype_struct(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.budget.spend::<A::Error>(0)?;
        let seq = self.wrap(seq);
        self.inner.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.budget.spend::<A::Error>(0)?;
        let mut map = self.wrap(map);
        map.fields = self.fields;
        self.inner.visit_map(map)
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let data = self.wrap(data);
        self.inner.visit_enum(data)
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Counted<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<S::Value, D::Error> {
        let d = self.deserializer(d);
        self.inner.deserialize(d)
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_element_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        if let (Some(fields), Some(log)) = (self.fields, self.keys) {
            return keys::next_known_key(&mut self.inner, fields, seed, log, self.budget);
        }
        let seed = self.wrap(seed);
        self.inner.next_key_seed(seed)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'b, A: EnumAccess<'de>> EnumAccess<'de> for Counted<'b, A> {
    type Error = A::Error;
    type Variant = Counted<'b, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let seed = self.wrap(seed);
        let (budget, keys) = (self.budget, self.keys);
        let (value, variant) = self.inner.variant_seed(seed)?;
        Ok((
            value,
            Counted {
                inner: variant,
                budget,
                keys,
                fields: None,
            },
        ))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Counted<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        let seed = self.wrap(seed);
        self.inner.newtype_variant_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.tuple_variant(len, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        let visitor = self.wrap(visitor);
        self.inner.struct_variant(fields, visitor)
    }
}
