//! How each kind of value is laid out as a FlatBuffers table field, and the macros that derive
//! the canonical two-pass encoding for ODF tables, unions and enums.
//!
//! Pass one writes every variable-size value (strings, vectors, nested tables, union values) in
//! field order, depth first; pass two opens the table and adds every field in declaration order.

use super::builder::{Builder, RevPos};
use super::reader::{DecodeError, Table};

/// A value that occupies one field (two for unions) of a FlatBuffers table.
pub trait FbField: Sized {
    /// Number of vtable slots the field takes (unions take a type slot and a value slot).
    const SLOTS: u16 = 1;
    type Prepared;

    /// Pass one: writes out-of-line data, returns what pass two needs.
    fn prepare(&self, builder: &mut Builder) -> Self::Prepared;

    /// Pass two for a field in a required position: scalars equal to their default are omitted.
    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16);

    /// Pass two for a field in an optional (`= null`) position: always written.
    fn push_present(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        Self::push(prepared, builder, slot);
    }

    fn is_present(table: &Table<'_>, slot: u16) -> Result<bool, DecodeError> {
        table.has(slot)
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError>;
}

/// A type encoded as a FlatBuffers table of its own.
pub trait FbTable: Sized {
    fn write_table(&self, builder: &mut Builder) -> RevPos;
    fn read_table(table: &Table<'_>) -> Result<Self, DecodeError>;
}

/// A type that can be an element of a vector of tables.
pub trait FbVectorElement: Sized {
    fn write_element(&self, builder: &mut Builder) -> RevPos;
    fn read_element(table: &Table<'_>) -> Result<Self, DecodeError>;
}

pub fn missing(name: &str) -> DecodeError {
    DecodeError::MissingField {
        field: name.to_string(),
    }
}

impl<T: FbField> FbField for Option<T> {
    const SLOTS: u16 = T::SLOTS;
    type Prepared = Option<T::Prepared>;

    fn prepare(&self, builder: &mut Builder) -> Self::Prepared {
        self.as_ref().map(|value| value.prepare(builder))
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        if let Some(prepared) = prepared {
            T::push_present(prepared, builder, slot);
        }
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        if !T::is_present(table, slot)? {
            return Ok(None);
        }
        T::read(table, slot, name).map(Some)
    }
}

impl<T: FbField> FbField for Box<T> {
    const SLOTS: u16 = T::SLOTS;
    type Prepared = T::Prepared;

    fn prepare(&self, builder: &mut Builder) -> Self::Prepared {
        self.as_ref().prepare(builder)
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        T::push(prepared, builder, slot);
    }

    fn push_present(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        T::push_present(prepared, builder, slot);
    }

    fn is_present(table: &Table<'_>, slot: u16) -> Result<bool, DecodeError> {
        T::is_present(table, slot)
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        T::read(table, slot, name).map(Box::new)
    }
}

macro_rules! scalar_field {
    ($($ty:ty),*) => {$(
        impl FbField for $ty {
            type Prepared = $ty;

            fn prepare(&self, _builder: &mut Builder) -> Self::Prepared {
                *self
            }

            fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
                if *prepared != <$ty>::default() {
                    builder.push_slot_always_scalar(slot, &prepared.to_le_bytes());
                }
            }

            fn push_present(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
                builder.push_slot_always_scalar(slot, &prepared.to_le_bytes());
            }

            fn read(table: &Table<'_>, slot: u16, _name: &str) -> Result<Self, DecodeError> {
                Ok(table
                    .scalar::<{ std::mem::size_of::<$ty>() }>(slot)?
                    .map(<$ty>::from_le_bytes)
                    .unwrap_or_default())
            }
        }
    )*};
}

scalar_field!(u64, i64, u32, i32, u16, i16, u8);

impl FbField for bool {
    type Prepared = bool;

    fn prepare(&self, _builder: &mut Builder) -> Self::Prepared {
        *self
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        if *prepared {
            builder.push_slot_always_scalar(slot, &[1]);
        }
    }

    fn push_present(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        builder.push_slot_always_scalar(slot, &[u8::from(*prepared)]);
    }

    fn read(table: &Table<'_>, slot: u16, _name: &str) -> Result<Self, DecodeError> {
        Ok(table.scalar::<1>(slot)?.is_some_and(|[byte]| byte != 0))
    }
}

impl FbField for String {
    type Prepared = RevPos;

    fn prepare(&self, builder: &mut Builder) -> Self::Prepared {
        builder.create_string(self)
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        builder.push_slot_offset(slot, *prepared);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        table
            .string(slot)
            .map_err(|error| error.within(name))?
            .map(str::to_string)
            .ok_or_else(|| missing(name))
    }
}

impl FbField for Vec<String> {
    type Prepared = RevPos;

    fn prepare(&self, builder: &mut Builder) -> Self::Prepared {
        let offsets: Vec<RevPos> = self.iter().map(|s| builder.create_string(s)).collect();
        builder.create_offset_vector(&offsets)
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        builder.push_slot_offset(slot, *prepared);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        table
            .string_vector(slot)
            .map_err(|error| error.within(name))?
            .ok_or_else(|| missing(name))
    }
}

impl<T: FbVectorElement> FbField for Vec<T> {
    type Prepared = RevPos;

    fn prepare(&self, builder: &mut Builder) -> Self::Prepared {
        let offsets: Vec<RevPos> = self.iter().map(|e| e.write_element(builder)).collect();
        builder.create_offset_vector(&offsets)
    }

    fn push(prepared: &Self::Prepared, builder: &mut Builder, slot: u16) {
        builder.push_slot_offset(slot, *prepared);
    }

    fn read(table: &Table<'_>, slot: u16, name: &str) -> Result<Self, DecodeError> {
        let elements = table.table_vector(slot)?.ok_or_else(|| missing(name))?;
        elements
            .iter()
            .enumerate()
            .map(|(index, element)| {
                T::read_element(element).map_err(|error| error.within(&format!("{name}[{index}]")))
            })
            .collect()
    }
}

/// Declares an ODF table: the struct as written plus its canonical FlatBuffers codec.
macro_rules! odf_table {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                pub $field:ident : $ty:ty
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub struct $name {
            $(
                $(#[$field_meta])*
                pub $field: $ty,
            )*
        }

        impl $crate::flatbuffers::codec::FbTable for $name {
            #[allow(unused_variables, unused_assignments, unused_mut, unused_imports)]
            fn write_table(&self, builder: &mut $crate::flatbuffers::builder::Builder) -> $crate::flatbuffers::builder::RevPos {
                use $crate::flatbuffers::codec::FbField;
                $( let $field = self.$field.prepare(builder); )*
                let start = builder.start_table();
                let mut slot: u16 = 0;
                $(
                    <$ty as FbField>::push(&$field, builder, slot);
                    slot += <$ty as FbField>::SLOTS;
                )*
                builder.end_table(start)
            }

            #[allow(unused_variables, unused_assignments, unused_mut, unused_imports)]
            fn read_table(table: &$crate::flatbuffers::reader::Table<'_>) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                use $crate::flatbuffers::codec::FbField;
                let mut slot: u16 = 0;
                $(
                    let $field = <$ty as FbField>::read(table, slot, stringify!($field))?;
                    slot += <$ty as FbField>::SLOTS;
                )*
                Ok(Self { $($field),* })
            }
        }

        $crate::flatbuffers::codec::table_field!($name);
    };
}

/// Makes a table type usable as a field and as a vector element.
macro_rules! table_field {
    ($name:ident) => {
        impl $crate::flatbuffers::codec::FbField for $name {
            type Prepared = $crate::flatbuffers::builder::RevPos;

            fn prepare(
                &self,
                builder: &mut $crate::flatbuffers::builder::Builder,
            ) -> Self::Prepared {
                $crate::flatbuffers::codec::FbTable::write_table(self, builder)
            }

            fn push(
                prepared: &Self::Prepared,
                builder: &mut $crate::flatbuffers::builder::Builder,
                slot: u16,
            ) {
                builder.push_slot_offset(slot, *prepared);
            }

            fn read(
                table: &$crate::flatbuffers::reader::Table<'_>,
                slot: u16,
                name: &str,
            ) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                let inner = table
                    .table(slot)?
                    .ok_or_else(|| $crate::flatbuffers::codec::missing(name))?;
                <$name as $crate::flatbuffers::codec::FbTable>::read_table(&inner)
                    .map_err(|error| error.within(name))
            }
        }

        impl $crate::flatbuffers::codec::FbVectorElement for $name {
            fn write_element(
                &self,
                builder: &mut $crate::flatbuffers::builder::Builder,
            ) -> $crate::flatbuffers::builder::RevPos {
                $crate::flatbuffers::codec::FbTable::write_table(self, builder)
            }

            fn read_element(
                table: &$crate::flatbuffers::reader::Table<'_>,
            ) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                <$name as $crate::flatbuffers::codec::FbTable>::read_table(table)
            }
        }
    };
}

/// Declares an ODF union: an enum of tables, encoded as a type byte and a table offset.
macro_rules! odf_union {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident($ty:ty) = $tag:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant($ty),
            )*
        }

        impl $name {
            /// Name of the variant as the spec spells it.
            pub fn variant_name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => stringify!($variant), )*
                }
            }

            fn fb_tag(&self) -> u8 {
                match self {
                    $( Self::$variant(_) => $tag, )*
                }
            }

            fn fb_write_value(&self, builder: &mut $crate::flatbuffers::builder::Builder) -> $crate::flatbuffers::builder::RevPos {
                match self {
                    $( Self::$variant(value) => $crate::flatbuffers::codec::FbTable::write_table(value, builder), )*
                }
            }

            fn fb_read_value(tag: u8, table: &$crate::flatbuffers::reader::Table<'_>, name: &str) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                match tag {
                    $( $tag => <$ty as $crate::flatbuffers::codec::FbTable>::read_table(table).map(Self::$variant), )*
                    other => Err($crate::flatbuffers::reader::DecodeError::invalid(name, format!("unknown {} variant {other}", stringify!($name)))),
                }
            }
        }

        impl $crate::flatbuffers::codec::FbField for $name {
            const SLOTS: u16 = 2;
            type Prepared = (u8, $crate::flatbuffers::builder::RevPos);

            fn prepare(&self, builder: &mut $crate::flatbuffers::builder::Builder) -> Self::Prepared {
                (self.fb_tag(), self.fb_write_value(builder))
            }

            fn push(prepared: &Self::Prepared, builder: &mut $crate::flatbuffers::builder::Builder, slot: u16) {
                builder.push_slot_always_scalar(slot, &[prepared.0]);
                builder.push_slot_offset(slot + 1, prepared.1);
            }

            fn read(table: &$crate::flatbuffers::reader::Table<'_>, slot: u16, name: &str) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                let [tag] = table.scalar::<1>(slot)?.ok_or_else(|| $crate::flatbuffers::codec::missing(name))?;
                let value = table.table(slot + 1)?.ok_or_else(|| $crate::flatbuffers::codec::missing(name))?;
                Self::fb_read_value(tag, &value, name).map_err(|error| error.within(name))
            }
        }

        /// In vectors a union is wrapped into a table with a single union field `value`.
        impl $crate::flatbuffers::codec::FbVectorElement for $name {
            fn write_element(&self, builder: &mut $crate::flatbuffers::builder::Builder) -> $crate::flatbuffers::builder::RevPos {
                let prepared = $crate::flatbuffers::codec::FbField::prepare(self, builder);
                let start = builder.start_table();
                <$name as $crate::flatbuffers::codec::FbField>::push(&prepared, builder, 0);
                builder.end_table(start)
            }

            fn read_element(table: &$crate::flatbuffers::reader::Table<'_>) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                <$name as $crate::flatbuffers::codec::FbField>::read(table, 0, "value")
            }
        }
    };
}

/// Declares an ODF string enum, encoded as an integer of the given width.
macro_rules! odf_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident : $repr:ty {
            $(
                $(#[$variant_meta:meta])*
                $variant:ident = $value:literal
            ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $(
                $(#[$variant_meta])*
                $variant,
            )*
        }

        impl $name {
            pub fn as_repr(self) -> $repr {
                match self {
                    $( Self::$variant => $value, )*
                }
            }

            pub fn from_repr(value: $repr) -> Option<Self> {
                match value {
                    $( $value => Some(Self::$variant), )*
                    _ => None,
                }
            }
        }

        impl $crate::flatbuffers::codec::FbField for $name {
            type Prepared = $repr;

            fn prepare(&self, _builder: &mut $crate::flatbuffers::builder::Builder) -> Self::Prepared {
                self.as_repr()
            }

            fn push(prepared: &Self::Prepared, builder: &mut $crate::flatbuffers::builder::Builder, slot: u16) {
                <$repr as $crate::flatbuffers::codec::FbField>::push(prepared, builder, slot);
            }

            fn push_present(prepared: &Self::Prepared, builder: &mut $crate::flatbuffers::builder::Builder, slot: u16) {
                <$repr as $crate::flatbuffers::codec::FbField>::push_present(prepared, builder, slot);
            }

            fn read(table: &$crate::flatbuffers::reader::Table<'_>, slot: u16, name: &str) -> Result<Self, $crate::flatbuffers::reader::DecodeError> {
                let raw = <$repr as $crate::flatbuffers::codec::FbField>::read(table, slot, name)?;
                Self::from_repr(raw).ok_or_else(|| $crate::flatbuffers::reader::DecodeError::invalid(name, format!("unknown {} value {raw}", stringify!($name))))
            }
        }
    };
}

pub(crate) use {odf_enum, odf_table, odf_union, table_field};
