//! Volumes as network tensors and back, without copying into another layout.
//!
//! A `Volume` stores x fastest; a burn tensor `[S, C, A, B, C']` stores its last axis fastest.
//! So the data of an image of shape `[nx, ny, nz]` *is* a row-major tensor `[1, 1, nz, ny, nx]`:
//! the network sees the axes reversed, with the spacing reversed to match. Training and
//! inference both go through these functions, so the network only ever sees that order.

use burn::tensor::{Device, Tensor, TensorData};
use voxel::{Geometry, Image};

use crate::error::{Result, VisionError};

/// The tensor axes (after batch and channel) of a volume of `shape`: reversed.
pub fn tensor_shape(shape: [usize; 3]) -> [usize; 3] {
    [shape[2], shape[1], shape[0]]
}

/// The spacing of the tensor axes of a volume on `geometry`: reversed.
pub fn tensor_spacing(geometry: &Geometry) -> [f64; 3] {
    let s = geometry.spacing_mm();
    [s[2], s[1], s[0]]
}

/// `image` as a `[1, 1, nz, ny, nx]` tensor on `device`.
pub fn image_to_tensor(image: &Image, device: &Device) -> Tensor<5> {
    let [a, b, c] = tensor_shape(image.shape());
    Tensor::<5>::from_data(
        TensorData::new(image.data().to_vec(), [1, 1, a, b, c]),
        device,
    )
}

/// Images of one grid stacked as streams: a `[S, 1, nz, ny, nx]` tensor on `device`. All
/// images must share the first one's shape.
pub fn images_to_tensor(images: &[&Image], device: &Device) -> Result<Tensor<5>> {
    let first = images
        .first()
        .ok_or_else(|| VisionError::Shape("no image to stack".into()))?;
    let shape = first.shape();
    let mut data = Vec::with_capacity(images.len() * first.data().len());
    for image in images {
        if image.shape() != shape {
            return Err(VisionError::Shape(format!(
                "streams must share one grid: {:?} and {:?}",
                shape,
                image.shape()
            )));
        }
        data.extend_from_slice(image.data());
    }
    let [a, b, c] = tensor_shape(shape);
    Ok(Tensor::<5>::from_data(
        TensorData::new(data, [images.len(), 1, a, b, c]),
        device,
    ))
}

/// A `[1, 1, nz, ny, nx]` tensor as an image on `geometry` (the inverse of [`image_to_tensor`]).
pub fn tensor_to_image(tensor: Tensor<5>, geometry: &Geometry) -> Result<Image> {
    let [a, b, c] = tensor_shape(geometry.shape());
    let dims = tensor.dims();
    if dims != [1, 1, a, b, c] {
        return Err(VisionError::Shape(format!(
            "network output {dims:?} does not match the grid {:?}",
            geometry.shape()
        )));
    }
    let data = tensor_values(tensor)?;
    Image::new(geometry.clone(), data).map_err(|e| VisionError::Backend(e.to_string()))
}

/// A `[S, 1, nz, ny, nx]` tensor as S images on `geometry` (the inverse of
/// [`images_to_tensor`]).
pub fn tensor_to_images(tensor: Tensor<5>, geometry: &Geometry) -> Result<Vec<Image>> {
    let [a, b, c] = tensor_shape(geometry.shape());
    let dims = tensor.dims();
    if dims[1..] != [1, a, b, c] {
        return Err(VisionError::Shape(format!(
            "network output {dims:?} does not match the grid {:?}",
            geometry.shape()
        )));
    }
    let data = tensor_values(tensor)?;
    let n = a * b * c;
    data.chunks_exact(n.max(1))
        .map(|chunk| {
            Image::new(geometry.clone(), chunk.to_vec())
                .map_err(|e| VisionError::Backend(e.to_string()))
        })
        .collect()
}

/// The values of any float tensor, row-major.
pub fn tensor_values<const D: usize>(tensor: Tensor<D>) -> Result<Vec<f32>> {
    tensor
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| VisionError::Backend(format!("{e:?}")))
}
