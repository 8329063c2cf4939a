//! API tokens in SQLite: the SHA-256 of each secret, never the secret.

use cubby_model::{ProjectId, Token, TokenId};
use rusqlite::{OptionalExtension, Row, params};

use super::{SqliteStore, from_ms, ms, q};
use crate::{StoreError, TokenRecord, TokenStore};

fn token_from_row(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    let hash: Vec<u8> = row.get(3)?;
    let hash: [u8; 32] = hash.as_slice().try_into().map_err(|_| {
        rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Blob, "a token hash is 32 bytes".into())
    })?;
    Ok(TokenRecord {
        token: Token {
            id: TokenId::from_stored(row.get(0)?),
            project_id: row.get::<_, Option<String>>(1)?.map(ProjectId::from_stored),
            name: row.get(2)?,
            created_at: from_ms(row.get(4)?),
        },
        hash,
    })
}

impl TokenStore for SqliteStore {
    fn insert_token(&self, token: &TokenRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO tokens (id, project_id, name, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    token.token.id.as_str(),
                    token.token.project_id.as_ref().map(ProjectId::as_str),
                    token.token.name,
                    &token.hash[..],
                    ms(token.token.created_at)
                ],
            )
            .map_err(q("insert token"))?;
        Ok(())
    }

    fn token_by_hash(&self, hash: &[u8; 32]) -> Result<Option<TokenRecord>, StoreError> {
        self.conn()
            .prepare_cached("SELECT id, project_id, name, hash, created_at FROM tokens WHERE hash = ?1")
            .and_then(|mut s| s.query_row([&hash[..]], token_from_row).optional())
            .map_err(q("find token"))
    }

    fn tokens(&self, project: Option<&ProjectId>) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, project_id, name, hash, created_at FROM tokens WHERE project_id IS ?1 ORDER BY created_at, id",
            )
            .map_err(q("list tokens"))?;
        let rows = stmt.query_map([project.map(ProjectId::as_str)], token_from_row).map_err(q("list tokens"))?;
        rows.collect::<Result<_, _>>().map_err(q("list tokens"))
    }

    fn delete_token(&self, id: &TokenId) -> Result<bool, StoreError> {
        let n = self.conn().execute("DELETE FROM tokens WHERE id = ?1", [id.as_str()]).map_err(q("delete token"))?;
        Ok(n > 0)
    }
}
