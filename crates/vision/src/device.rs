//! Choosing the compute device by name, so one binary trains and runs on the CPU (flex, always
//! built) or on a GPU when it was built with the `wgpu` or `cuda` feature.

use crate::error::{Result, VisionError};
use burn::tensor::Device;

/// Device names this build accepts, the CPU first.
pub fn available_devices() -> Vec<&'static str> {
    let mut names = vec!["cpu"];
    if cfg!(feature = "wgpu") {
        names.push("wgpu");
    }
    if cfg!(feature = "cuda") {
        names.push("cuda");
    }
    names
}

/// The device called `name`: `cpu` (alias `flex`), `wgpu` (the default adapter, high-power GPU
/// first; `CUBECL_WGPU_DEFAULT_DEVICE` overrides) or `cuda` / `cuda:N`. A GPU name in a build
/// without its feature is an error that says which feature to build with.
pub fn compute_device(name: &str) -> Result<Device> {
    let name = name.trim().to_ascii_lowercase();
    let unavailable = |feature: &str| VisionError::Device {
        name: name.clone(),
        reason: format!(
            "this build has no {feature} backend (rebuild with `--features {feature}`; built: {})",
            available_devices().join(", ")
        ),
    };
    match name.as_str() {
        "cpu" | "flex" => Ok(Device::flex()),
        "wgpu" | "gpu" => wgpu_device().ok_or_else(|| unavailable("wgpu")),
        n if n == "cuda" || n.starts_with("cuda:") => {
            let index = match n.strip_prefix("cuda:") {
                None => 0,
                Some(i) => i.parse::<usize>().map_err(|_| VisionError::Device {
                    name: name.clone(),
                    reason: "the CUDA device index must be a whole number, e.g. cuda:1".into(),
                })?,
            };
            cuda_device(index).ok_or_else(|| unavailable("cuda"))
        }
        _ => Err(VisionError::Device {
            name: name.clone(),
            reason: format!("unknown device (known: {})", available_devices().join(", ")),
        }),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu_device() -> Option<Device> {
    Some(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu_device() -> Option<Device> {
    None
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Option<Device> {
    Some(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Option<Device> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_always_available_and_unknown_names_are_refused() {
        assert!(compute_device("cpu").is_ok());
        assert!(compute_device("FLEX").is_ok());
        assert_eq!(available_devices()[0], "cpu");
        let err = compute_device("tpu").unwrap_err().to_string();
        assert!(err.contains("tpu") && err.contains("cpu"), "{err}");
        if !cfg!(feature = "cuda") {
            let err = compute_device("cuda:1").unwrap_err().to_string();
            assert!(err.contains("--features cuda"), "{err}");
        }
        let err = compute_device("cuda:x").unwrap_err().to_string();
        assert!(err.contains("index") || err.contains("cuda"), "{err}");
    }
}
