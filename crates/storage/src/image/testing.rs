//! Archives for the import tests, including hostile ones a tar builder
//! would refuse to write.

/// A tar of `(path, kind, data, link target)` entries, names written raw
/// (up to 100 bytes) so tests can use `..`, absolute paths and whiteouts.
pub(crate) fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, kind, data, link) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        if let Some(link) = link {
            h.set_link_name(link).unwrap();
        }
        let name = h.as_old_mut();
        name.name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// A `docker save` archive: `manifest.json` naming the layers (each a tar
/// of its own) in order, and extra raw entries for hostile variants.
pub(crate) fn docker_archive(layers: &[Vec<u8>]) -> Vec<u8> {
    let names: Vec<String> = (0..layers.len()).map(|i| format!("l{i}/layer.tar")).collect();
    let manifest = serde_json::json!([{ "Config": null, "RepoTags": [], "Layers": names }]).to_string();
    let mut entries: Vec<(&str, tar::EntryType, &[u8], Option<&str>)> =
        vec![("manifest.json", tar::EntryType::Regular, manifest.as_bytes(), None)];
    for (name, layer) in names.iter().zip(layers) {
        entries.push((name, tar::EntryType::Regular, layer, None));
    }
    tar_with(&entries)
}
