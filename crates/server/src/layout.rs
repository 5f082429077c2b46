//! The page layout's data (the navigation) and the error page: what every
//! HTML page and the error type share, below the routes.

use askama::Template;
use axum::response::Html;

/// Navigation data of the layout.
pub struct Nav {
    pub(crate) display_name: String,
    pub(crate) csrf: String,
    pub(crate) professional: bool,
    pub(crate) admin: bool,
    pub(crate) beds: bool,
    pub(crate) triage: bool,
    pub(crate) region: bool,
    pub(crate) agenda: bool,
    pub(crate) waiting_room: bool,
    pub(crate) billing: bool,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: String,
    nav: Option<Nav>,
    heading: String,
    message: String,
}

/// A complete error page (used by [`PageError`]).
pub fn error_page(status: u16, message: &str) -> Html<String> {
    let heading = match status {
        403 => "Accès refusé",
        404 => "Page introuvable",
        413 => "Requête trop volumineuse",
        429 => "Trop de tentatives",
        400..=499 => "Requête refusée",
        _ => "Erreur",
    };
    let page = ErrorPage {
        title: heading.into(),
        nav: None,
        heading: heading.into(),
        message: message.into(),
    };
    Html(page.render().unwrap_or_else(|_| {
        format!("<!doctype html><html lang=\"fr\"><title>{heading}</title><p>{heading}</p></html>")
    }))
}
