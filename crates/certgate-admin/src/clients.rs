//! SPEC §13 client inventory over HTTP: `GET /api/v1/clients`. The clients come from the
//! node's data plane ([`crate::tools::Tools::clients`]); in cluster mode they are joined
//! with the parts the other nodes wrote to the store ([`certgate_store::inventory::union`]).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use certgate_store::inventory::{self, ClientView, SeenClient};

use crate::error::ApiError;
use crate::query::Query;
use crate::AdminState;

/// This node's clients joined with the other nodes' parts in the store, newest first.
/// When the store cannot be read the node's own clients are answered (the inventory is
/// an observation, not configuration; the outage shows on `/readyz`).
pub(crate) async fn all(st: &AdminState) -> Vec<SeenClient> {
    let local = st.tools.as_ref().map(|t| t.clients()).unwrap_or_default();
    let own = st
        .node
        .as_ref()
        .map(|n| n.id().to_owned())
        .unwrap_or_default();
    let others = if st.store.backend_name() == "postgres" {
        match st.store.inventory_parts(&own).await {
            Ok(parts) => parts,
            Err(e) => {
                tracing::warn!(error = %e, "answering this node's clients only: the store's inventory parts cannot be read");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    inventory::union(std::iter::once(local).chain(others))
}

#[utoipa::path(get, path = "/clients", tag = "tools",
    params(
        ("api" = Option<String>, Query, description = "Only clients that requested this API (by name)"),
        ("denied" = Option<bool>, Query, description = "`true`: only clients with a denial; `false`: only clients without one"),
    ),
    responses((status = 200, description = "The client certificates seen, newest `last_seen` first (SPEC §13)", body = Vec<ClientView>), crate::openapi::ReadErrors))]
pub(crate) async fn list_clients(
    State(st): State<AdminState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let q = Query::parse(query.as_deref());
    let denied = q.bool("denied")?;
    let api = q.get("api");
    let clients: Vec<ClientView> = all(&st)
        .await
        .into_iter()
        .map(|c| c.view)
        .filter(|c| inventory::matches(c, api, denied))
        .collect();
    Ok(Json(clients).into_response())
}
