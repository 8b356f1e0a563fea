//! One engine per device at a time. Every trial that launches a real engine takes an exclusive
//! file lock for its device under `<target>/l1/locks/`, whatever runs it (libtest threads of one
//! process under `cargo test`, or separate nextest processes). The CPU host counts as one device.
//! The lock is released when the trial's measurement ends (or its process dies: the OS drops
//! file locks of dead processes, so a crashed trial never wedges the device).

use std::fs::File;
use std::path::{Path, PathBuf};

use l1_engines::DeviceKind;

/// A held device.
#[derive(Debug)]
pub struct DeviceLock {
    _file: File,
    /// `gpu-<index>` or `cpu-host`.
    pub device: String,
    /// The value for `CUDA_VISIBLE_DEVICES` of the engine process (GPUs only).
    pub cuda_visible_devices: Option<String>,
    pub path: PathBuf,
}

/// The device a trial runs on: a GPU index from nextest's test-group slot (an N-GPU runner sets
/// the `gpu` group's max-threads to N), else GPU 0; or the CPU host.
pub fn device_for(kind: DeviceKind) -> (String, Option<String>) {
    match kind {
        DeviceKind::Cpu => ("cpu-host".into(), None),
        DeviceKind::Gpu => {
            let index = crate::settings::env()
                .test_group_slot
                .clone()
                .unwrap_or_else(|| "0".into());
            (format!("gpu-{index}"), Some(index))
        }
    }
}

/// Why a device could not be acquired.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The lock directory or lock file could not be created.
    #[error("failed to create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The lock file could not be locked.
    #[error("failed to lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<DeviceError> for String {
    fn from(e: DeviceError) -> Self {
        e.to_string()
    }
}

/// Block until the device is free, then hold it.
pub fn acquire(target_dir: &Path, kind: DeviceKind) -> Result<DeviceLock, DeviceError> {
    let (device, cuda_visible_devices) = device_for(kind);
    let dir = target_dir.join("l1").join("locks");
    std::fs::create_dir_all(&dir).map_err(|source| DeviceError::Create {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("device-{device}.lock"));
    let file = File::create(&path).map_err(|source| DeviceError::Create {
        path: path.clone(),
        source,
    })?;
    file.lock().map_err(|source| DeviceError::Lock {
        path: path.clone(),
        source,
    })?;
    Ok(DeviceLock {
        _file: file,
        device,
        cuda_visible_devices,
        path,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn one_holder_at_a_time_across_threads() {
        let dir = std::env::temp_dir().join(format!("l1-device-lock-{}", std::process::id()));
        let inside = Arc::new(AtomicUsize::new(0));
        let max_seen = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (dir, inside, max_seen) = (dir.clone(), inside.clone(), max_seen.clone());
                std::thread::spawn(move || {
                    let lock = acquire(&dir, DeviceKind::Cpu).unwrap();
                    let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                    max_seen.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, Ordering::SeqCst);
                    drop(lock);
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(max_seen.load(Ordering::SeqCst), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn gpu_index_follows_the_nextest_slot() {
        let (device, visible) = device_for(DeviceKind::Cpu);
        assert_eq!((device.as_str(), visible), ("cpu-host", None));
    }

    #[test]
    fn a_lock_dir_that_cannot_be_made_is_a_typed_error() {
        // A plain file where the target dir should be: `<file>/l1/locks` cannot be created.
        let file = std::env::temp_dir().join(format!("l1-device-blocked-{}", std::process::id()));
        std::fs::write(&file, b"not a directory").unwrap();
        let e = acquire(&file, DeviceKind::Cpu).unwrap_err();
        let locks = file.join("l1").join("locks");
        assert!(
            matches!(&e, DeviceError::Create { path, .. } if *path == locks),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with(&format!("failed to create {}: ", locks.display())),
            "{e}"
        );
        let _ = std::fs::remove_file(&file);
    }
}
