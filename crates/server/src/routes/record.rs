//! The desk's form for a patient's record: the identity traits (locked for an
//! identity whose traits came from INSi), the used names, the home address,
//! phones and e-mail, the *personne de confiance*, the person to call, the GP,
//! the language and the death. A refusal shows the form again with what was
//! typed and why.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use domain::PatientId;
use domain::demographics::{
    Address, AddressUse, BirthPlace, Contact, ContactRole, Demographics, DemographicsPatch, Gp,
    Relationship, Telecom, TelecomKind, normalize_language,
};
use domain::identity::{PatientRecord, Sex, Traits};

use super::kit::{Nav, field, nav, path_id, posted_form, render, see_other};
use crate::error::{AppError, PageError};
use crate::extract::WebUser;
use crate::services::patients;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new().route("/patients/{id}/coordonnees", get(edit_page).post(save))
}

/// The form's values, as typed (or as stored, on first display).
#[derive(Debug, Default, Clone)]
struct Values {
    birth_name: String,
    given: String,
    birth_date: String,
    sex: String,
    birthplace: String,
    used_name: String,
    used_given: String,
    birth_city: String,
    birth_country: String,
    line1: String,
    line2: String,
    postal_code: String,
    city: String,
    country: String,
    mobile: String,
    home_phone: String,
    work_phone: String,
    email: String,
    language: String,
    trusted: ContactValues,
    emergency: ContactValues,
    gp_rpps: String,
    gp_family: String,
    gp_given: String,
    deceased: String,
}

#[derive(Debug, Default, Clone)]
struct ContactValues {
    family: String,
    given: String,
    relationship: String,
    phone: String,
}

#[derive(Template)]
#[template(path = "patient_edit.html")]
struct EditPage {
    title: String,
    nav: Option<Nav>,
    id: String,
    csrf: String,
    version: i64,
    /// The INS traits cannot be edited (RECUP, QUAL): why.
    locked: Option<String>,
    v: Values,
    error: Option<String>,
    relationships: Vec<(&'static str, &'static str)>,
}

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

fn contact_values(c: Option<&Contact>) -> ContactValues {
    c.map(|c| ContactValues {
        family: c.family.clone(),
        given: opt(&c.given),
        relationship: c
            .relationship
            .map(|r| r.code().to_owned())
            .unwrap_or_default(),
        phone: c.phone.clone().unwrap_or_default(),
    })
    .unwrap_or_default()
}

fn values_of(p: &PatientRecord, d: &Demographics) -> Values {
    let t = &p.traits;
    let home = d.address(AddressUse::Home);
    let line = |n: usize| {
        home.and_then(|a| a.lines.get(n).cloned())
            .unwrap_or_default()
    };
    let tel = |k: TelecomKind| d.telecom(k).map(|t| t.value.clone()).unwrap_or_default();
    Values {
        birth_name: t.birth_name.clone(),
        given: t.birth_given_names.join(" "),
        birth_date: t.birth_date.to_string(),
        sex: t.sex.code().into(),
        birthplace: opt(&t.birthplace_code),
        used_name: opt(&t.used_name),
        used_given: opt(&t.used_given_name),
        birth_city: d
            .birth_place
            .as_ref()
            .map(|b| opt(&b.city))
            .unwrap_or_default(),
        birth_country: d
            .birth_place
            .as_ref()
            .map(|b| opt(&b.country))
            .unwrap_or_default(),
        line1: line(0),
        line2: line(1),
        postal_code: home.map(|a| opt(&a.postal_code)).unwrap_or_default(),
        city: home.map(|a| opt(&a.city)).unwrap_or_default(),
        country: home
            .map(|a| a.country.clone().unwrap_or_else(|| "FRA".into()))
            .unwrap_or_else(|| "FRA".into()),
        mobile: tel(TelecomKind::Mobile),
        home_phone: tel(TelecomKind::HomePhone),
        work_phone: tel(TelecomKind::WorkPhone),
        email: tel(TelecomKind::Email),
        language: opt(&d.language),
        trusted: contact_values(d.trusted_person()),
        emergency: contact_values(d.contacts.iter().find(|c| c.role == ContactRole::Emergency)),
        gp_rpps: d
            .gp
            .as_ref()
            .map(|g| g.rpps.as_str().to_owned())
            .unwrap_or_default(),
        gp_family: d.gp.as_ref().map(|g| opt(&g.family)).unwrap_or_default(),
        gp_given: d.gp.as_ref().map(|g| opt(&g.given)).unwrap_or_default(),
        deceased: d.deceased.map(|x| x.to_string()).unwrap_or_default(),
    }
}

fn values_from(f: &[(String, String)]) -> Values {
    let g = |k: &str| field(f, k).trim().to_owned();
    let contact = |p: &str| ContactValues {
        family: g(&format!("{p}_family")),
        given: g(&format!("{p}_given")),
        relationship: g(&format!("{p}_relationship")),
        phone: g(&format!("{p}_phone")),
    };
    Values {
        birth_name: g("birth_name"),
        given: g("given"),
        birth_date: g("birth_date"),
        sex: g("sex"),
        birthplace: g("birthplace"),
        used_name: g("used_name"),
        used_given: g("used_given"),
        birth_city: g("birth_city"),
        birth_country: g("birth_country").to_uppercase(),
        line1: g("line1"),
        line2: g("line2"),
        postal_code: g("postal_code"),
        city: g("city"),
        country: g("country").to_uppercase(),
        mobile: g("mobile"),
        home_phone: g("home_phone"),
        work_phone: g("work_phone"),
        email: g("email"),
        language: g("language"),
        trusted: contact("trusted"),
        emergency: contact("emergency"),
        gp_rpps: g("gp_rpps"),
        gp_family: g("gp_family"),
        gp_given: g("gp_given"),
        deceased: g("deceased"),
    }
}

fn some(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// The traits and the patch the form says, against the record's current
/// demographics `d` (the addresses, phones and close ones the form does not
/// show are kept); the first refusal in French.
fn read_values(
    v: &Values,
    current: &PatientRecord,
    locked: bool,
    d: &Demographics,
) -> Result<(Traits, DemographicsPatch), String> {
    let mut traits = if locked {
        current.traits.clone()
    } else {
        Traits {
            birth_name: v.birth_name.clone(),
            birth_given_names: v.given.split_whitespace().map(str::to_owned).collect(),
            birth_date: v
                .birth_date
                .parse()
                .map_err(|_| "date de naissance: une date complète est attendue".to_owned())?,
            sex: Sex::from_code(&v.sex).ok_or("sexe: choisissez dans la liste")?,
            birthplace_code: some(&v.birthplace),
            used_name: None,
            used_given_name: None,
        }
    };
    traits.used_name = some(&v.used_name);
    traits.used_given_name = some(&v.used_given);

    let mut addresses: Vec<Address> = Vec::new();
    let lines: Vec<String> = [&v.line1, &v.line2]
        .into_iter()
        .filter_map(|l| some(l))
        .collect();
    if !lines.is_empty() || some(&v.city).is_some() || some(&v.postal_code).is_some() {
        addresses.push(Address {
            use_: AddressUse::Home,
            lines,
            postal_code: some(&v.postal_code),
            city: some(&v.city),
            country: some(&v.country),
        });
    }
    addresses.extend(
        d.addresses
            .iter()
            .filter(|a| a.use_ != AddressUse::Home)
            .cloned(),
    );

    let mut telecoms = Vec::new();
    for (kind, value) in [
        (TelecomKind::Mobile, &v.mobile),
        (TelecomKind::HomePhone, &v.home_phone),
        (TelecomKind::WorkPhone, &v.work_phone),
        (TelecomKind::Email, &v.email),
    ] {
        if let Some(x) = some(value) {
            telecoms.push(Telecom::parse(kind, &x).map_err(|e| e.to_string())?);
        }
        // The further ones of that kind (from the feed) are kept.
        telecoms.extend(
            d.telecoms
                .iter()
                .filter(|t| t.kind == kind)
                .skip(1)
                .cloned(),
        );
    }

    let contact = |c: &ContactValues, role: ContactRole| -> Result<Option<Contact>, String> {
        if c.family.is_empty() && c.given.is_empty() && c.phone.is_empty() {
            return Ok(None);
        }
        let phone = match some(&c.phone) {
            Some(p) => Some(domain::demographics::normalize_phone(&p).ok_or_else(|| {
                format!("{}: numéro de téléphone {p:?} invalide", role.label_fr())
            })?),
            None => None,
        };
        Ok(Some(Contact {
            role,
            relationship: some(&c.relationship).and_then(|r| Relationship::from_code(&r)),
            family: some(&c.family)
                .ok_or_else(|| format!("{}: le nom est obligatoire", role.label_fr()))?,
            given: some(&c.given),
            phone,
        }))
    };
    let mut contacts: Vec<Contact> = contact(&v.trusted, ContactRole::Trusted)?
        .into_iter()
        .chain(contact(&v.emergency, ContactRole::Emergency)?)
        .collect();
    // Close ones from the feed that the form does not show are kept.
    let mut seen = (false, false);
    for c in &d.contacts {
        let first = match c.role {
            ContactRole::Trusted => std::mem::replace(&mut seen.0, true),
            ContactRole::Emergency => std::mem::replace(&mut seen.1, true),
            ContactRole::NextOfKin => true,
        };
        if first {
            contacts.push(c.clone());
        }
    }

    let gp = match some(&v.gp_rpps) {
        Some(r) => Some(Gp {
            rpps: domain::org::Rpps::parse(&r).map_err(|e| format!("médecin traitant: {e}"))?,
            family: some(&v.gp_family),
            given: some(&v.gp_given),
        }),
        None if some(&v.gp_family).is_some() => {
            return Err("médecin traitant: son numéro RPPS est obligatoire".into());
        }
        None => None,
    };
    let language = match some(&v.language) {
        Some(l) => Some(
            normalize_language(&l)
                .ok_or_else(|| format!("langue {l:?}: code ISO attendu (fr, en, ar, pt…)"))?,
        ),
        None => None,
    };
    let deceased = match some(&v.deceased) {
        Some(x) => Some(
            x.parse()
                .map_err(|_| "date de décès: une date complète est attendue".to_owned())?,
        ),
        None => None,
    };
    let birth_place = BirthPlace {
        city: some(&v.birth_city),
        country: some(&v.birth_country),
    };
    let patch = DemographicsPatch {
        addresses: Some(addresses),
        birth_place: Some(
            (birth_place.city.is_some() || birth_place.country.is_some()).then_some(birth_place),
        ),
        telecoms: Some(telecoms),
        contacts: Some(contacts),
        gp: Some(gp),
        language: Some(language),
        deceased: Some(deceased),
    };
    Ok((traits, patch))
}

fn locked_reason(p: &PatientRecord) -> Option<String> {
    p.status.insi_checked().then(|| {
        format!(
            "Identité {} : les traits d'identité viennent du téléservice INSi et ne se modifient que par une nouvelle qualification.",
            p.status.label_fr()
        )
    })
}

/// The form for `p` with values `v`; `version` is the one the form was filled
/// against (a refused form keeps it: sending it again cannot overwrite a change
/// made meanwhile).
fn page(
    w: &WebUser,
    p: &PatientRecord,
    v: Values,
    error: Option<String>,
    version: i64,
) -> EditPage {
    EditPage {
        title: format!("Modifier le dossier de {}", p.traits.display_name()),
        nav: nav(w),
        id: p.id.to_string(),
        csrf: w.session.csrf_token.clone(),
        version,
        locked: locked_reason(p),
        v,
        error,
        relationships: Relationship::ALL
            .iter()
            .map(|r| (r.code(), r.label_fr()))
            .collect(),
    }
}

async fn editable(
    state: &AppState,
    w: &WebUser,
    id: &str,
) -> Result<(PatientRecord, Demographics), AppError> {
    let pid: PatientId = path_id(id, "patient")?;
    let p = patients::read(state.ctx(), &w.actor, pid).await?;
    if !patients::may_edit(state.ctx(), &w.actor, &p).await? {
        return Err(AppError::Forbidden(
            "vous ne pouvez pas modifier ce dossier".into(),
        ));
    }
    let d = patients::demographics(state.ctx(), pid).await?;
    Ok((p, d))
}

async fn edit_page(
    State(state): State<AppState>,
    w: WebUser,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (p, d) = editable(&state, &w, &id).await?;
    let v = values_of(&p, &d);
    Ok(render(&page(&w, &p, v, None, p.version))?.into_response())
}

async fn save(
    State(state): State<AppState>,
    headers: HeaderMap,
    w: WebUser,
    Path(id): Path<String>,
    body: String,
) -> Result<Response, PageError> {
    let f = posted_form(&state, &headers, &w, &body)?;
    let (p, d) = editable(&state, &w, &id).await?;
    let v = values_from(&f);
    let version: i64 = field(&f, "version").parse().unwrap_or(-1);
    let again = |error: String| -> Result<Response, PageError> {
        let mut out = render(&page(&w, &p, v.clone(), Some(error), version))?.into_response();
        *out.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
        Ok(out)
    };
    let (traits, patch) = match read_values(&v, &p, locked_reason(&p).is_some(), &d) {
        Ok(x) => x,
        Err(e) => return again(e),
    };
    match patients::edit(state.ctx(), &w.actor, p.id, version, traits, patch).await {
        Ok(_) => Ok(see_other(&format!("/patients/{}", p.id))),
        Err(AppError::Unprocessable(_, m) | AppError::Conflict(m)) => again(m),
        Err(e) => Err(e.into()),
    }
}
