//! Stored voxel types and their conversion to f32 images and i32 label maps.

use rayon::prelude::*;
use serde::Serialize;

/// A stored voxel type (the NIfTI names; MGH uses a subset).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DataType {
    /// unsigned 8-bit
    U8,
    /// signed 8-bit
    I8,
    /// signed 16-bit
    I16,
    /// unsigned 16-bit
    U16,
    /// signed 32-bit
    I32,
    /// unsigned 32-bit
    U32,
    /// signed 64-bit
    I64,
    /// unsigned 64-bit
    U64,
    /// 32-bit float
    F32,
    /// 64-bit float
    F64,
}

impl DataType {
    /// Bytes per voxel.
    pub fn size(self) -> usize {
        match self {
            DataType::U8 | DataType::I8 => 1,
            DataType::I16 | DataType::U16 => 2,
            DataType::I32 | DataType::U32 | DataType::F32 => 4,
            DataType::I64 | DataType::U64 | DataType::F64 => 8,
        }
    }

    /// Whether the type stores integers.
    pub fn is_integer(self) -> bool {
        !matches!(self, DataType::F32 | DataType::F64)
    }

    /// Parses a user-facing name (`u8`, `i16`, `int16`, `float32`, …).
    pub fn parse(name: &str) -> Option<DataType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "u8" | "uint8" | "uchar" => DataType::U8,
            "i8" | "int8" => DataType::I8,
            "i16" | "int16" | "short" => DataType::I16,
            "u16" | "uint16" => DataType::U16,
            "i32" | "int32" | "int" => DataType::I32,
            "u32" | "uint32" => DataType::U32,
            "i64" | "int64" => DataType::I64,
            "u64" | "uint64" => DataType::U64,
            "f32" | "float32" | "float" => DataType::F32,
            "f64" | "float64" | "double" => DataType::F64,
            _ => return None,
        })
    }

    fn int_range(self) -> Option<(f64, f64)> {
        Some(match self {
            DataType::U8 => (0.0, 255.0),
            DataType::I8 => (-128.0, 127.0),
            DataType::I16 => (-32768.0, 32767.0),
            DataType::U16 => (0.0, 65535.0),
            DataType::I32 => (i32::MIN as f64, i32::MAX as f64),
            DataType::U32 => (0.0, u32::MAX as f64),
            DataType::I64 | DataType::U64 => (i32::MIN as f64, i32::MAX as f64),
            DataType::F32 | DataType::F64 => return None,
        })
    }
}

/// Voxel values as stored in a file, in native byte order.
#[derive(Clone, Debug, PartialEq)]
pub enum RawData {
    /// unsigned 8-bit values
    U8(Vec<u8>),
    /// signed 8-bit values
    I8(Vec<i8>),
    /// signed 16-bit values
    I16(Vec<i16>),
    /// unsigned 16-bit values
    U16(Vec<u16>),
    /// signed 32-bit values
    I32(Vec<i32>),
    /// unsigned 32-bit values
    U32(Vec<u32>),
    /// signed 64-bit values
    I64(Vec<i64>),
    /// unsigned 64-bit values
    U64(Vec<u64>),
    /// 32-bit floats
    F32(Vec<f32>),
    /// 64-bit floats
    F64(Vec<f64>),
}

macro_rules! decode_as {
    ($bytes:expr, $ty:ty, $n:expr, $big:expr) => {{
        let size = std::mem::size_of::<$ty>();
        $bytes[..$n * size]
            .par_chunks_exact(size)
            .map(|c| {
                let arr = c.try_into().unwrap_or([0; std::mem::size_of::<$ty>()]);
                if $big {
                    <$ty>::from_be_bytes(arr)
                } else {
                    <$ty>::from_le_bytes(arr)
                }
            })
            .collect::<Vec<$ty>>()
    }};
}

macro_rules! each_variant {
    ($self:expr, $v:ident => $body:expr) => {
        match $self {
            RawData::U8($v) => $body,
            RawData::I8($v) => $body,
            RawData::I16($v) => $body,
            RawData::U16($v) => $body,
            RawData::I32($v) => $body,
            RawData::U32($v) => $body,
            RawData::I64($v) => $body,
            RawData::U64($v) => $body,
            RawData::F32($v) => $body,
            RawData::F64($v) => $body,
        }
    };
}

impl RawData {
    /// Decodes `n` values of `dtype` from `bytes` (big- or little-endian). The caller checks
    /// that `bytes` is long enough.
    pub fn decode(bytes: &[u8], dtype: DataType, n: usize, big_endian: bool) -> RawData {
        match dtype {
            DataType::U8 => RawData::U8(bytes[..n].to_vec()),
            DataType::I8 => RawData::I8(bytes[..n].iter().map(|&b| b as i8).collect()),
            DataType::I16 => RawData::I16(decode_as!(bytes, i16, n, big_endian)),
            DataType::U16 => RawData::U16(decode_as!(bytes, u16, n, big_endian)),
            DataType::I32 => RawData::I32(decode_as!(bytes, i32, n, big_endian)),
            DataType::U32 => RawData::U32(decode_as!(bytes, u32, n, big_endian)),
            DataType::I64 => RawData::I64(decode_as!(bytes, i64, n, big_endian)),
            DataType::U64 => RawData::U64(decode_as!(bytes, u64, n, big_endian)),
            DataType::F32 => RawData::F32(decode_as!(bytes, f32, n, big_endian)),
            DataType::F64 => RawData::F64(decode_as!(bytes, f64, n, big_endian)),
        }
    }

    /// Appends the values' bytes to `out` in the requested byte order.
    pub fn encode_into(&self, out: &mut Vec<u8>, big_endian: bool) {
        let size = self.datatype().size();
        let start = out.len();
        out.resize(start + self.len() * size, 0);
        let dst = &mut out[start..];
        each_variant!(self, v => {
            dst.par_chunks_mut(size).zip(v.par_iter()).for_each(|(d, x)| {
                if big_endian {
                    d.copy_from_slice(&x.to_be_bytes())
                } else {
                    d.copy_from_slice(&x.to_le_bytes())
                }
            })
        })
    }

    /// The stored type.
    pub fn datatype(&self) -> DataType {
        match self {
            RawData::U8(_) => DataType::U8,
            RawData::I8(_) => DataType::I8,
            RawData::I16(_) => DataType::I16,
            RawData::U16(_) => DataType::U16,
            RawData::I32(_) => DataType::I32,
            RawData::U32(_) => DataType::U32,
            RawData::I64(_) => DataType::I64,
            RawData::U64(_) => DataType::U64,
            RawData::F32(_) => DataType::F32,
            RawData::F64(_) => DataType::F64,
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        each_variant!(self, v => v.len())
    }

    /// True when there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values as f32 with `value = raw · slope + inter` applied in f64 (as nibabel).
    pub fn to_f32(&self, scaling: Option<(f64, f64)>) -> Vec<f32> {
        match (self, scaling) {
            (RawData::F32(v), None) => v.clone(),
            _ => self.convert_f32(scaling),
        }
    }

    /// [`RawData::to_f32`] that reuses the buffer when the data already is unscaled f32.
    pub fn into_f32(self, scaling: Option<(f64, f64)>) -> Vec<f32> {
        match (self, scaling) {
            (RawData::F32(v), None) => v,
            (other, s) => other.convert_f32(s),
        }
    }

    // One generic body over every stored type: for f32/f64 some casts are no-ops.
    #[allow(clippy::unnecessary_cast)]
    fn convert_f32(&self, scaling: Option<(f64, f64)>) -> Vec<f32> {
        match (self, scaling) {
            (_, None) => each_variant!(self, v => v.par_iter().map(|&x| x as f32).collect()),
            (_, Some((slope, inter))) => {
                each_variant!(self, v => v.par_iter().map(|&x| (x as f64 * slope + inter) as f32).collect())
            }
        }
    }

    /// Values as i32 labels; fails when a scaled value is not a whole number in i32 range.
    #[allow(clippy::unnecessary_cast)]
    pub fn to_i32(&self, scaling: Option<(f64, f64)>) -> std::result::Result<Vec<i32>, String> {
        let (slope, inter) = scaling.unwrap_or((1.0, 0.0));
        let convert = |x: f64| -> std::result::Result<i32, String> {
            let y = x * slope + inter;
            if y.fract() != 0.0 || !y.is_finite() || y < i32::MIN as f64 || y > i32::MAX as f64 {
                Err(format!("voxel value {y} is not an integer label"))
            } else {
                Ok(y as i32)
            }
        };
        match (self, scaling) {
            (RawData::I32(v), None) => Ok(v.clone()),
            _ => each_variant!(self, v => v.par_iter().map(|&x| convert(x as f64)).collect()),
        }
    }

    /// Converts labels to the smallest integer type that holds them all.
    pub fn from_labels(labels: &[i32]) -> RawData {
        let (lo, hi) = labels
            .par_iter()
            .fold(|| (0i32, 0i32), |(a, b), &v| (a.min(v), b.max(v)))
            .reduce(|| (0, 0), |(a, b), (c, d)| (a.min(c), b.max(d)));
        if lo >= 0 && hi <= 255 {
            RawData::U8(labels.par_iter().map(|&v| v as u8).collect())
        } else if lo >= i16::MIN as i32 && hi <= i16::MAX as i32 {
            RawData::I16(labels.par_iter().map(|&v| v as i16).collect())
        } else {
            RawData::I32(labels.to_vec())
        }
    }

    /// Converts an f32 image for storage as `dtype`. Float types store values as they are;
    /// integer types store rounded values when every value is already a whole number in range,
    /// and otherwise a linear map of the value range onto the type range, returned as the
    /// `(slope, inter)` to write in the header.
    pub fn from_f32(
        values: &[f32],
        dtype: DataType,
    ) -> std::result::Result<(RawData, Option<(f64, f64)>), String> {
        if values.iter().any(|v| !v.is_finite()) {
            return Err("image contains NaN or infinite voxels".into());
        }
        let Some((tmin, tmax)) = dtype.int_range() else {
            return Ok(match dtype {
                DataType::F64 => (
                    RawData::F64(values.iter().map(|&v| v as f64).collect()),
                    None,
                ),
                _ => (RawData::F32(values.to_vec()), None),
            });
        };
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v as f64), b.max(v as f64))
            });
        let integral = values.iter().all(|v| v.fract() == 0.0);
        let (slope, inter) = if values.is_empty() || (integral && lo >= tmin && hi <= tmax) {
            (1.0, 0.0)
        } else if hi > lo {
            let slope = (hi - lo) / (tmax - tmin);
            (slope, lo - tmin * slope)
        } else {
            (1.0, lo)
        };
        let q = |v: f32| ((v as f64 - inter) / slope).round().clamp(tmin, tmax);
        let data = match dtype {
            DataType::U8 => RawData::U8(values.iter().map(|&v| q(v) as u8).collect()),
            DataType::I8 => RawData::I8(values.iter().map(|&v| q(v) as i8).collect()),
            DataType::I16 => RawData::I16(values.iter().map(|&v| q(v) as i16).collect()),
            DataType::U16 => RawData::U16(values.iter().map(|&v| q(v) as u16).collect()),
            DataType::I32 => RawData::I32(values.iter().map(|&v| q(v) as i32).collect()),
            DataType::U32 => RawData::U32(values.iter().map(|&v| q(v) as u32).collect()),
            DataType::I64 => RawData::I64(values.iter().map(|&v| q(v) as i64).collect()),
            DataType::U64 => RawData::U64(values.iter().map(|&v| q(v) as u64).collect()),
            DataType::F32 | DataType::F64 => return Err("unreachable float type".into()),
        };
        let scaling = if slope == 1.0 && inter == 0.0 {
            None
        } else {
            Some((slope, inter))
        };
        Ok((data, scaling))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_round_trip_both_orders() {
        let d = RawData::I16(vec![-3, 0, 7, i16::MAX, i16::MIN]);
        for big in [false, true] {
            let mut bytes = Vec::new();
            d.encode_into(&mut bytes, big);
            assert_eq!(RawData::decode(&bytes, DataType::I16, 5, big), d);
        }
    }

    #[test]
    fn labels_pick_smallest_type() {
        assert_eq!(RawData::from_labels(&[0, 17, 255]).datatype(), DataType::U8);
        assert_eq!(RawData::from_labels(&[0, 2035]).datatype(), DataType::I16);
        assert_eq!(
            RawData::from_labels(&[0, 100_000]).datatype(),
            DataType::I32
        );
    }

    #[test]
    fn integer_storage_scales_within_one_step() {
        let v: Vec<f32> = (0..100).map(|i| i as f32 * 0.37 - 5.0).collect();
        let (raw, scaling) = RawData::from_f32(&v, DataType::I16).unwrap();
        let (slope, _) = scaling.unwrap();
        let back = raw.to_f32(scaling);
        for (a, b) in v.iter().zip(&back) {
            assert!(((a - b).abs() as f64) <= slope * 0.51 + 1e-5);
        }
    }

    #[test]
    fn non_integer_labels_are_refused() {
        assert!(RawData::F32(vec![1.0, 2.5]).to_i32(None).is_err());
        assert_eq!(
            RawData::F32(vec![1.0, 2.0]).to_i32(None).unwrap(),
            vec![1, 2]
        );
    }
}
