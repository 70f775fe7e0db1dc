//! Test support, for this crate's tests and the integration tests: a
//! PostgreSQL of their own. Not part of the API.

use sqlx::Connection as _;

/// A PostgreSQL URL for a schema of its own on the test server
/// (`TESSERA_TEST_DATABASE_URL`, which `cargo xtask test` sets when it
/// starts one), or `None` with a note that PostgreSQL is skipped — a
/// failure instead where `TESSERA_REQUIRE_POSTGRES` is set, as in CI.
pub async fn postgres_url_for_test() -> Option<String> {
    let url = match std::env::var("TESSERA_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                std::env::var_os("TESSERA_REQUIRE_POSTGRES").is_none(),
                "TESSERA_REQUIRE_POSTGRES is set but TESSERA_TEST_DATABASE_URL is not: \
                 run the tests with `cargo xtask test`, which starts a PostgreSQL"
            );
            eprintln!(
                "skipping the PostgreSQL backend: TESSERA_TEST_DATABASE_URL is not set \
                 (`cargo xtask test` starts a PostgreSQL when it is installed)"
            );
            return None;
        }
    };
    let schema: String = super::new_user_id()
        .expect("random numbers")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let schema = format!("t{schema}");
    let mut admin = sqlx::PgConnection::connect(&url)
        .await
        .expect("connecting to TESSERA_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut admin)
        .await
        .expect("creating a schema on the test server");
    admin.close().await.expect("closing the connection");
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!("{url}{sep}options=-c%20search_path%3D{schema}"))
}

/// A store on [`postgres_url_for_test`].
#[cfg(test)]
pub(crate) async fn postgres_for_test() -> Option<super::Store> {
    let url = postgres_url_for_test().await?;
    Some(
        super::Store::open(&url)
            .await
            .expect("opening the PostgreSQL test store"),
    )
}

/// Runs `test` on a fresh store of every backend: SQLite in a file of
/// its own, then PostgreSQL (see [`postgres_for_test`]).
#[cfg(test)]
pub(crate) async fn on_each_backend<F, Fut>(test: F)
where
    F: Fn(super::Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    eprintln!("on sqlite:");
    test(super::Store::open(&url).await.unwrap()).await;
    if let Some(store) = postgres_for_test().await {
        eprintln!("on postgres:");
        test(store).await;
    }
}
