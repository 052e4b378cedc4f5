//! Declarative configuration (SPEC §15): the whole configuration as one document
//! ([`ConfigDocument`]), read by [`Store::export_config`] and made the store's by
//! [`Store::apply_config`] in one transaction.
//!
//! An apply is the single writes of the admin API run one after the other on one write
//! transaction (`store.rs`, the `*_in` functions), so a document is judged by exactly the
//! rules and errors of the single endpoints; an error's message starts with the document
//! path of the value it is about (`apis[2].base_path: …`). Components, trust-table entries
//! and APIs are matched by name, never by id. The order of the steps is chosen so that no
//! intermediate state refuses what the final state allows:
//!
//! 1. certificates: new components, new versions, reactivations;
//! 2. trust-table entries the document no longer lists are removed;
//! 3. components missing from the document (or `active: false`) are deactivated;
//! 4. the gateway's settings (absent fields keep their value, as in
//!    `PUT /api/v1/gateway/client-cert-auth`);
//! 5. trust-table entries are added or re-pinned;
//! 6. APIs the document no longer lists are deleted, the others updated or created (a
//!    changing base path is parked first, so two APIs may swap theirs), then overrides.
//!
//! Every step that changes nothing is skipped, and the commit drops records that show no
//! change: a document equal to the store changes nothing, not even the generation.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::audit::{to_value, Audit};
use crate::db::{args, Tx};
use crate::error::StoreError;
use crate::model::{Api, ApiOverride, ClientCertAuthSettings};
use crate::store::{
    add_trusted_in, add_version_in, clear_api_override_in, create_api_in, create_component_in,
    delete_api_in, pin_trusted_in, read_settings, read_trusted, remove_trusted_in,
    set_api_override_in, set_component_active_in, update_api_in, update_client_cert_auth_in,
};
use crate::validate;
use crate::views::{ApiBody, ApiOverrideBody, ClientCertAuthPatch};
use crate::Store;

type Result<T> = std::result::Result<T, StoreError>;

/// The whole configuration (SPEC §15): `GET /api/v1/config` answers it, `PUT` takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    /// Every certificate component with all its versions, oldest first.
    pub certificates: Vec<DocCertificate>,
    /// The gateway's settings (SPEC §2 and §16), its DN list as `trusted_dns`. On `PUT`
    /// an absent field keeps its current value.
    pub client_cert_auth: ClientCertAuthPatch,
    /// The trust table, by component name.
    pub trusted_certificates: Vec<DocTrusted>,
    /// Every API.
    pub apis: Vec<DocApi>,
}

/// A certificate component of a [`ConfigDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocCertificate {
    /// The component's unique name.
    pub name: String,
    /// Whether it is active (default `true`).
    #[serde(default = "yes")]
    pub active: bool,
    /// Every version, version 1 first. Versions are history: a stored version may be
    /// neither left out nor replaced; more versions than stored are added.
    pub versions: Vec<DocVersion>,
}

fn yes() -> bool {
    true
}

/// One version of a [`DocCertificate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocVersion {
    /// The certificate, PEM.
    pub pem: String,
}

/// A trust-table entry of a [`ConfigDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocTrusted {
    /// The component's name (it must be in the document's `certificates`).
    pub name: String,
    /// The pinned version. Absent: the latest for a new entry, unchanged for an existing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
}

/// An API of a [`ConfigDocument`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocApi {
    /// The API's unique name.
    pub name: String,
    /// Its unique base path.
    pub base_path: String,
    /// Its upstream URL.
    pub upstream: String,
    /// Its override (`null` or absent: it inherits everything).
    #[serde(default)]
    pub client_cert_auth: Option<ApiOverrideBody>,
}

/// What `PUT /api/v1/config` changed (SPEC §15): lists of `kind:name`, kinds
/// `certificate`, `certificate_version` (`name/version`), `trusted_certificate`, `api`,
/// `client_cert_auth` (`gateway` or the API's name).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplyAnswer {
    /// Objects the document added.
    pub created: Vec<String>,
    /// Objects the document changed.
    pub updated: Vec<String>,
    /// Objects the document removed (trust-table entries, APIs, API overrides).
    pub deleted: Vec<String>,
    /// Components the document left out or marked inactive (their versions stay).
    pub deactivated: Vec<String>,
}

impl ApplyAnswer {
    /// Whether the apply changed nothing.
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
            && self.deactivated.is_empty()
    }
}

/// The settings as a document states them: every field present.
pub fn settings_document(s: &ClientCertAuthSettings) -> ClientCertAuthPatch {
    ClientCertAuthPatch {
        mode: Some(s.mode),
        required: Some(s.required),
        header_name: Some(s.header_name.clone()),
        header_format: Some(s.header_format),
        trusted_proxies: Some(s.trusted_proxies.iter().map(|n| n.to_string()).collect()),
        trusted_dns: Some(s.trusted_dns.clone()),
        validation_failure: Some(s.validation_failure),
        crls: Some(s.crls.clone()),
        forward_identity: Some(s.forward_identity),
        send_ca_names: Some(s.send_ca_names),
        forward_formats: Some(s.forward_formats.clone()),
        sni_host_check: Some(s.sni_host_check),
        revocation_failure: Some(s.revocation_failure),
        revocation: Some(s.revocation),
        revocation_fetch_hosts: Some(s.revocation_fetch_hosts.clone()),
        revocation_fetch_timeout_ms: Some(s.revocation_fetch_timeout_ms),
    }
}

/// Prefixes a refused error's message with the document path it is about.
fn at(path: impl std::fmt::Display) -> impl FnOnce(StoreError) -> StoreError {
    move |e| match e {
        StoreError::Refused {
            kind,
            code,
            message,
        } => StoreError::Refused {
            kind,
            code,
            message: format!("{path}: {message}"),
        },
        other => other,
    }
}

fn duplicate(path: String, code: &'static str, value: &str) -> StoreError {
    at(path)(StoreError::invalid(
        code,
        format!("{value:?} appears more than once in the document."),
    ))
}

#[derive(Debug, sqlx::FromRow)]
struct StoredComponent {
    id: i64,
    name: String,
    active: bool,
}

#[derive(Debug, sqlx::FromRow)]
struct StoredVersion {
    component_id: i64,
    version: i64,
    pem: String,
    fingerprint: String,
}

impl Store {
    /// The whole configuration as one document (SPEC §15), read in one transaction.
    pub async fn export_config(&self) -> Result<ConfigDocument> {
        let mut tx = self.begin_read_tx().await?;
        let doc = export_in(&mut tx).await?;
        tx.commit().await?;
        Ok(doc)
    }

    /// Makes the store equal to `doc` in one transaction (SPEC §15; the module docs give
    /// the steps). A refused document changes nothing; a document equal to the store
    /// changes nothing, not the generation. With [`Store::rehearse`] it is the dry run.
    pub async fn apply_config(
        &self,
        doc: &ConfigDocument,
        now: OffsetDateTime,
    ) -> Result<ApplyAnswer> {
        let mut tx = self.begin_write_tx().await?;
        let (answer, audits) = apply_in(&mut tx, doc, now).await?;
        self.commit_all_tx(tx, audits).await?;
        Ok(answer)
    }
}

async fn stored_components(tx: &mut Tx) -> Result<(Vec<StoredComponent>, Vec<StoredVersion>)> {
    let comps: Vec<StoredComponent> = tx
        .all(
            "SELECT id, name, active FROM certificate_components ORDER BY id",
            args![],
        )
        .await?;
    let versions: Vec<StoredVersion> = tx
        .all(
            "SELECT component_id, version, pem, fingerprint FROM certificate_versions \
             ORDER BY component_id, version",
            args![],
        )
        .await?;
    Ok((comps, versions))
}

async fn export_in(tx: &mut Tx) -> Result<ConfigDocument> {
    let (comps, versions) = stored_components(tx).await?;
    let mut by_comp: HashMap<i64, Vec<DocVersion>> = HashMap::new();
    for v in versions {
        by_comp
            .entry(v.component_id)
            .or_default()
            .push(DocVersion { pem: v.pem });
    }
    let certificates = comps
        .into_iter()
        .map(|c| DocCertificate {
            versions: by_comp.remove(&c.id).unwrap_or_default(),
            name: c.name,
            active: c.active,
        })
        .collect();
    let (_, settings) = read_settings(tx).await?;
    let trusted_certificates = read_trusted(tx)
        .await?
        .into_iter()
        .map(|t| DocTrusted {
            name: t.name,
            version: Some(t.version),
        })
        .collect();
    let apis = crate::store::read_apis(tx)
        .await?
        .into_iter()
        .map(|a| DocApi {
            name: a.name,
            base_path: a.base_path,
            upstream: a.upstream,
            client_cert_auth: a.override_.map(|o| ApiOverrideBody {
                required: o.required,
                trusted_dns: o.trusted_dns,
            }),
        })
        .collect();
    Ok(ConfigDocument {
        certificates,
        client_cert_auth: settings_document(&settings),
        trusted_certificates,
        apis,
    })
}

/// The checks of the document alone: names, duplicates, references, value rules of
/// every field that has a document path. Answers the normalized certificate names and
/// the certificates' parsed fingerprints (`[i][j]`).
fn check_document(doc: &ConfigDocument) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let mut names = Vec::with_capacity(doc.certificates.len());
    let mut fingerprints = Vec::with_capacity(doc.certificates.len());
    let mut seen = HashSet::new();
    for (i, c) in doc.certificates.iter().enumerate() {
        let name = validate::name("certificate", &c.name)
            .map_err(at(format!("certificates[{i}].name")))?;
        if !seen.insert(name.clone()) {
            return Err(duplicate(
                format!("certificates[{i}].name"),
                "duplicate_name",
                &name,
            ));
        }
        if c.versions.is_empty() {
            return Err(at(format!("certificates[{i}].versions"))(
                StoreError::invalid(
                    "version_missing",
                    format!("Certificate {name:?} needs at least one version."),
                ),
            ));
        }
        let mut fps = Vec::with_capacity(c.versions.len());
        for (j, v) in c.versions.iter().enumerate() {
            let info = validate::certificate(&v.pem)
                .map_err(at(format!("certificates[{i}].versions[{j}].pem")))?;
            fps.push(info.fingerprint_sha256);
        }
        names.push(name);
        fingerprints.push(fps);
    }
    let mut trusted = HashSet::new();
    for (k, t) in doc.trusted_certificates.iter().enumerate() {
        let name = t.name.trim();
        if !trusted.insert(name.to_string()) {
            return Err(at(format!("trusted_certificates[{k}].name"))(
                StoreError::invalid(
                    "already_trusted",
                    format!("{name:?} appears more than once in the trust table."),
                ),
            ));
        }
        if !names.iter().any(|n| n == name) {
            return Err(at(format!("trusted_certificates[{k}].name"))(
                StoreError::invalid(
                    "unknown_certificate",
                    format!("No certificate named {name:?} in the document's certificates."),
                ),
            ));
        }
    }
    validate::settings_patch(&doc.client_cert_auth)
        .map_err(|(field, e)| at(format!("client_cert_auth.{field}"))(e))?;
    let (mut api_names, mut paths) = (HashSet::new(), HashSet::new());
    for (m, a) in doc.apis.iter().enumerate() {
        let name = validate::name("API", &a.name).map_err(at(format!("apis[{m}].name")))?;
        validate::base_path(&a.base_path).map_err(at(format!("apis[{m}].base_path")))?;
        validate::upstream(&a.upstream).map_err(at(format!("apis[{m}].upstream")))?;
        if let Some(dns) = a
            .client_cert_auth
            .as_ref()
            .and_then(|o| o.trusted_dns.as_ref())
        {
            validate::patterns(dns)
                .map_err(at(format!("apis[{m}].client_cert_auth.trusted_dns")))?;
        }
        if !api_names.insert(name.clone()) {
            return Err(duplicate(
                format!("apis[{m}].name"),
                "duplicate_name",
                &name,
            ));
        }
        if !paths.insert(a.base_path.clone()) {
            return Err(duplicate(
                format!("apis[{m}].base_path"),
                "duplicate_base_path",
                &a.base_path,
            ));
        }
    }
    Ok((names, fingerprints))
}

/// Where an audit record of a step goes in the answer.
#[derive(Clone, Copy)]
enum List {
    Created,
    Updated,
    Deleted,
    Deactivated,
}

#[derive(Default)]
struct Changes {
    answer: ApplyAnswer,
    audits: Vec<Audit>,
}

impl Changes {
    /// Keeps `audit` (renamed to the endpoint's action, `config.apply`) and lists its
    /// target, unless it shows no change.
    fn push(&mut self, list: List, mut audit: Audit) {
        if audit.is_noop() {
            return;
        }
        let target = audit.target.clone();
        audit.action = "config.apply";
        self.audits.push(audit);
        let a = &mut self.answer;
        match list {
            List::Created => a.created.push(target),
            List::Updated => a.updated.push(target),
            List::Deleted => a.deleted.push(target),
            List::Deactivated => a.deactivated.push(target),
        }
    }
}

async fn apply_in(
    tx: &mut Tx,
    doc: &ConfigDocument,
    now: OffsetDateTime,
) -> Result<(ApplyAnswer, Vec<Audit>)> {
    let (names, fingerprints) = check_document(doc)?;
    let mut out = Changes::default();

    // 1. Certificates: new components and versions, reactivations.
    let (comps, versions) = stored_components(tx).await?;
    let mut stored_versions: HashMap<i64, Vec<StoredVersion>> = HashMap::new();
    for v in versions {
        stored_versions.entry(v.component_id).or_default().push(v);
    }
    let stored: HashMap<&str, &StoredComponent> =
        comps.iter().map(|c| (c.name.as_str(), c)).collect();
    // The component id of every name in the document.
    let mut ids: HashMap<String, i64> = HashMap::new();
    for (i, c) in doc.certificates.iter().enumerate() {
        let name = &names[i];
        let path = format!("certificates[{i}]");
        let id = match stored.get(name.as_str()) {
            Some(s) => {
                let have = stored_versions.remove(&s.id).unwrap_or_default();
                // Versions compare by fingerprint: the same certificate written with
                // other whitespace is the same version.
                if c.versions.len() < have.len() {
                    return Err(at(format!("{path}.versions"))(StoreError::invalid(
                        "version_missing",
                        format!(
                            "Certificate {name:?} has {} versions in the store and the document lists {}: versions are history and cannot be removed; list every one.",
                            have.len(),
                            c.versions.len()
                        ),
                    )));
                }
                for (j, h) in have.iter().enumerate() {
                    if fingerprints[i][j] != h.fingerprint {
                        return Err(at(format!("{path}.versions[{j}].pem"))(
                            StoreError::invalid(
                                "version_mismatch",
                                format!(
                                    "Version {} of certificate {name:?} is stored with another certificate ({}); versions are history and cannot be replaced.",
                                    h.version, h.fingerprint
                                ),
                            ),
                        ));
                    }
                }
                for (j, v) in c.versions.iter().enumerate().skip(have.len()) {
                    let (_, audit) = add_version_in(tx, s.id, &v.pem, now)
                        .await
                        .map_err(at(format!("{path}.versions[{j}].pem")))?;
                    out.push(List::Created, audit);
                }
                if c.active && !s.active {
                    let audit = set_component_active_in(tx, s.id, true)
                        .await
                        .map_err(at(format!("{path}.active")))?;
                    out.push(List::Updated, audit);
                }
                s.id
            }
            None => {
                let (id, audit) = create_component_in(tx, name, &c.versions[0].pem, now)
                    .await
                    .map_err(at(format!("{path}.versions[0].pem")))?;
                out.push(List::Created, audit);
                for (j, v) in c.versions.iter().enumerate().skip(1) {
                    let (_, audit) = add_version_in(tx, id, &v.pem, now)
                        .await
                        .map_err(at(format!("{path}.versions[{j}].pem")))?;
                    out.push(List::Created, audit);
                }
                id
            }
        };
        ids.insert(name.clone(), id);
    }

    // 2. Trust-table entries the document no longer lists.
    let wanted: HashSet<&str> = doc
        .trusted_certificates
        .iter()
        .map(|t| t.name.trim())
        .collect();
    let table = read_trusted(tx).await?;
    for t in &table {
        if !wanted.contains(t.name.as_str()) {
            let audit = remove_trusted_in(tx, t.certificate_id).await?;
            out.push(List::Deleted, audit);
        }
    }

    // 3. Components left out or marked inactive.
    for c in &comps {
        let in_doc = names.iter().position(|n| *n == c.name);
        let keep_active = in_doc.is_some_and(|i| doc.certificates[i].active);
        if c.active && !keep_active {
            let path = match in_doc {
                Some(i) => format!("certificates[{i}].active"),
                None => "certificates".to_string(),
            };
            let audit = set_component_active_in(tx, c.id, false)
                .await
                .map_err(at(path))?;
            out.push(List::Deactivated, audit);
        }
    }
    for (i, c) in doc.certificates.iter().enumerate() {
        // A new component the document marks inactive.
        if !c.active && !stored.contains_key(names[i].as_str()) {
            let audit = set_component_active_in(tx, ids[&names[i]], false)
                .await
                .map_err(at(format!("certificates[{i}].active")))?;
            out.push(List::Deactivated, audit);
        }
    }

    // 4. The gateway's settings.
    let (_, audit) = update_client_cert_auth_in(tx, &doc.client_cert_auth)
        .await
        .map_err(at("client_cert_auth"))?;
    out.push(List::Updated, audit);

    // 5. Trust-table entries added or re-pinned.
    let table: HashMap<i64, i64> = read_trusted(tx)
        .await?
        .into_iter()
        .map(|t| (t.certificate_id, t.version))
        .collect();
    for (k, t) in doc.trusted_certificates.iter().enumerate() {
        let id = ids[t.name.trim()];
        let path = format!("trusted_certificates[{k}]");
        match table.get(&id) {
            Some(&pinned) => {
                if let Some(v) = t.version.filter(|v| *v != pinned) {
                    let (_, audit) = pin_trusted_in(tx, id, Some(v), now)
                        .await
                        .map_err(at(format!("{path}.version")))?;
                    out.push(List::Updated, audit);
                }
            }
            None => {
                let (_, audit) = add_trusted_in(tx, id, t.version, now)
                    .await
                    .map_err(at(path))?;
                out.push(List::Created, audit);
            }
        }
    }

    // 6. APIs.
    apply_apis(tx, doc, &mut out).await?;
    Ok((out.answer, out.audits))
}

async fn apply_apis(tx: &mut Tx, doc: &ConfigDocument, out: &mut Changes) -> Result<()> {
    let current = crate::store::read_apis(tx).await?;
    let wanted: HashMap<String, usize> = doc
        .apis
        .iter()
        .enumerate()
        .map(|(m, a)| (a.name.trim().to_string(), m))
        .collect();
    for a in &current {
        if !wanted.contains_key(&a.name) {
            let audit = delete_api_in(tx, a.id).await?;
            out.push(List::Deleted, audit);
        }
    }
    let by_name: HashMap<&str, &Api> = current.iter().map(|a| (a.name.as_str(), a)).collect();
    // Park every base path that changes (at a value no base path can take: `?` is
    // refused), so the final paths never collide with an old one.
    for a in &doc.apis {
        if let Some(old) = by_name.get(a.name.trim()) {
            if old.base_path != a.base_path {
                tx.exec(
                    "UPDATE apis SET base_path = $1 WHERE id = $2",
                    args![format!("?parked:{}", old.id), old.id],
                )
                .await?;
            }
        }
    }
    for (m, a) in doc.apis.iter().enumerate() {
        let path = format!("apis[{m}]");
        let body = ApiBody {
            name: a.name.trim().to_string(),
            base_path: a.base_path.clone(),
            upstream: a.upstream.clone(),
        };
        let (api, before_override) = match by_name.get(a.name.trim()) {
            Some(old) => {
                if old.base_path != a.base_path || old.upstream != a.upstream {
                    let (api, mut audit) =
                        update_api_in(tx, old.id, &body).await.map_err(at(&path))?;
                    // The record's before is the API as it was, not as parked.
                    audit.before = to_value(old)?;
                    out.push(List::Updated, audit);
                    (api, old.override_.clone())
                } else {
                    ((*old).clone(), old.override_.clone())
                }
            }
            None => {
                let (api, audit) = create_api_in(tx, &body).await.map_err(at(&path))?;
                out.push(List::Created, audit);
                (api, None)
            }
        };
        let wanted: Option<ApiOverride> = a.client_cert_auth.clone().map(ApiOverride::from);
        if wanted == before_override {
            continue;
        }
        let path = format!("{path}.client_cert_auth");
        match (&before_override, &wanted) {
            (_, None) => {
                let audit = clear_api_override_in(tx, api.id).await.map_err(at(&path))?;
                out.push(List::Deleted, audit);
            }
            (None, Some(ov)) => {
                let audit = set_api_override_in(tx, api.id, ov)
                    .await
                    .map_err(at(&path))?;
                out.push(List::Created, audit);
            }
            (Some(_), Some(ov)) => {
                let audit = set_api_override_in(tx, api.id, ov)
                    .await
                    .map_err(at(&path))?;
                out.push(List::Updated, audit);
            }
        }
    }
    Ok(())
}
