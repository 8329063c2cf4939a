//! Images in SQLite: a name, where it came from, its config and its layer.

use cubby_model::{Image, ImageConfig, ImageSource, LayerId};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, from_ms, insert_error, json, ms, q};
use crate::{ImageRecord, ImageStore, StoreError};

type RawImage = (String, String, String, i64, String, i64, Option<String>);

fn image_from_row(row: &Row<'_>) -> rusqlite::Result<RawImage> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?, row.get(6)?))
}

fn decode_image(raw: RawImage) -> Result<ImageRecord, StoreError> {
    let (name, source, config, size, digest, created, layer_id) = raw;
    let corrupt = |detail: String| StoreError::Corrupt { what: "image", key: name.clone(), detail };
    let source = ImageSource::parse(&source).ok_or_else(|| corrupt(format!("unknown source `{source}`")))?;
    let config: ImageConfig = serde_json::from_str(&config).map_err(|e| corrupt(format!("config: {e}")))?;
    Ok(ImageRecord {
        image: Image {
            name: name.clone(),
            source,
            config,
            size_bytes: u64::try_from(size).map_err(|_| corrupt(format!("size {size}")))?,
            created_at: from_ms(created),
            warnings: Vec::new(),
        },
        digest,
        layer_id: LayerId::from_stored(layer_id.ok_or_else(|| corrupt("no layer".into()))?),
    })
}

impl ImageStore for SqliteStore {
    fn insert_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        let i = &image.image;
        self.conn()
            .execute(
                "INSERT INTO images (name, source, config, size_bytes, digest, created_at, layer_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    i.name,
                    i.source.as_str(),
                    json(&i.config),
                    i64::try_from(i.size_bytes).unwrap_or(i64::MAX),
                    image.digest,
                    ms(i.created_at),
                    image.layer_id.as_str(),
                ],
            )
            .map_err(insert_error("insert image", "image", i.name.clone()))?;
        Ok(())
    }

    fn image(&self, name: &str) -> Result<Option<ImageRecord>, StoreError> {
        let raw = self
            .conn()
            .query_row(
                "SELECT name, source, config, size_bytes, digest, created_at, layer_id FROM images WHERE name = ?1",
                [name],
                image_from_row,
            )
            .optional()
            .map_err(q("get image"))?;
        raw.map(decode_image).transpose()
    }

    fn images(&self) -> Result<Vec<ImageRecord>, StoreError> {
        let raws: Vec<_> = {
            let conn = self.conn();
            let mut stmt = conn
                .prepare_cached(
                    "SELECT name, source, config, size_bytes, digest, created_at, layer_id FROM images ORDER BY name",
                )
                .map_err(q("list images"))?;
            let rows = stmt.query_map([], image_from_row).map_err(q("list images"))?;
            rows.collect::<Result<_, _>>().map_err(q("list images"))?
        };
        raws.into_iter().map(decode_image).collect()
    }

    fn delete_image(&self, name: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM images WHERE name = ?1", [name]).map_err(q("delete image"))?;
        Ok(n > 0)
    }
}
