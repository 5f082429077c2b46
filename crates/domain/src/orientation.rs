//! Orientation requests from acute care to rehabilitation (SSR) or home
//! hospitalisation (HAD): sent to chosen establishments, each accepts or refuses
//! (with a reason); the first acceptance the requester confirms closes the request
//! for the others. Pure state machine; the store keeps it, the pages drive it.

/// What kind of place is sought.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    /// Soins de suite et de réadaptation.
    Ssr,
    /// Hospitalisation à domicile.
    Had,
}

impl TargetType {
    /// Code.
    pub fn code(self) -> &'static str {
        match self {
            TargetType::Ssr => "ssr",
            TargetType::Had => "had",
        }
    }
    /// Reads a code.
    pub fn from_code(c: &str) -> Option<TargetType> {
        match c {
            "ssr" => Some(TargetType::Ssr),
            "had" => Some(TargetType::Had),
            _ => None,
        }
    }
    /// French label.
    pub fn label_fr(self) -> &'static str {
        match self {
            TargetType::Ssr => "SSR (soins de suite et de réadaptation)",
            TargetType::Had => "HAD (hospitalisation à domicile)",
        }
    }
}

/// The request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestStatus {
    /// Waiting for answers or for the requester's choice.
    Open,
    /// The requester confirmed one acceptance.
    Confirmed,
    /// The requester withdrew it.
    Cancelled,
}

/// One recipient's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// Not answered yet.
    Pending,
    /// Accepted (a place is offered).
    Accepted,
    /// Refused, with a reason.
    Refused,
    /// The place chosen by the requester.
    Chosen,
    /// Closed because another place was chosen or the request withdrawn.
    Closed,
}

macro_rules! codes {
    ($t:ty { $($v:ident => $c:literal),* }) => {
        impl $t {
            /// Storage code.
            pub fn code(self) -> &'static str { match self { $(Self::$v => $c),* } }
            /// Reads a code.
            pub fn from_code(c: &str) -> Option<Self> { match c { $($c => Some(Self::$v),)* _ => None } }
        }
    };
}
codes!(RequestStatus { Open => "open", Confirmed => "confirmed", Cancelled => "cancelled" });
codes!(ResponseStatus { Pending => "pending", Accepted => "accepted", Refused => "refused", Chosen => "chosen", Closed => "closed" });

/// A step that the rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrientationError {
    /// The request is no longer open.
    #[error("la demande n'est plus ouverte")]
    NotOpen,
    /// This establishment already answered.
    #[error("cet établissement a déjà répondu")]
    AlreadyAnswered,
    /// A refusal needs a reason.
    #[error("un refus doit être motivé")]
    ReasonRequired,
    /// Only an accepted place can be confirmed.
    #[error("seule une proposition acceptée peut être confirmée")]
    NotAccepted,
    /// A request needs at least one recipient, each once.
    #[error("choisissez au moins un établissement destinataire, chacun une fois")]
    Recipients,
}

/// An answer from a recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Accept.
    Accept,
    /// Refuse, with the reason.
    Refuse(String),
}

/// Checks the recipients of a new request: at least one, no duplicate.
pub fn check_recipients<T: PartialEq>(recipients: &[T]) -> Result<(), OrientationError> {
    let dup = recipients
        .iter()
        .enumerate()
        .any(|(i, r)| recipients.iter().skip(i + 1).any(|o| o == r));
    if recipients.is_empty() || dup {
        Err(OrientationError::Recipients)
    } else {
        Ok(())
    }
}

/// A recipient answers: only while the request is open and it has not answered.
pub fn answer(
    request: RequestStatus,
    current: ResponseStatus,
    a: &Answer,
) -> Result<ResponseStatus, OrientationError> {
    if request != RequestStatus::Open {
        return Err(OrientationError::NotOpen);
    }
    if current != ResponseStatus::Pending {
        return Err(OrientationError::AlreadyAnswered);
    }
    match a {
        Answer::Accept => Ok(ResponseStatus::Accepted),
        Answer::Refuse(r) if r.trim().is_empty() => Err(OrientationError::ReasonRequired),
        Answer::Refuse(_) => Ok(ResponseStatus::Refused),
    }
}

/// The requester confirms recipient `chosen`: it must have accepted; every other
/// recipient still pending or accepted is closed. Returns the new statuses, in order.
pub fn confirm(
    request: RequestStatus,
    responses: &[ResponseStatus],
    chosen: usize,
) -> Result<Vec<ResponseStatus>, OrientationError> {
    if request != RequestStatus::Open {
        return Err(OrientationError::NotOpen);
    }
    if responses.get(chosen) != Some(&ResponseStatus::Accepted) {
        return Err(OrientationError::NotAccepted);
    }
    Ok(responses
        .iter()
        .enumerate()
        .map(|(i, r)| match (i == chosen, r) {
            (true, _) => ResponseStatus::Chosen,
            (false, ResponseStatus::Pending | ResponseStatus::Accepted) => ResponseStatus::Closed,
            (false, other) => *other,
        })
        .collect())
}

/// The requester withdraws the request: every unanswered or accepted place closes.
pub fn cancel(
    request: RequestStatus,
    responses: &[ResponseStatus],
) -> Result<Vec<ResponseStatus>, OrientationError> {
    if request != RequestStatus::Open {
        return Err(OrientationError::NotOpen);
    }
    Ok(responses
        .iter()
        .map(|r| {
            if matches!(r, ResponseStatus::Pending | ResponseStatus::Accepted) {
                ResponseStatus::Closed
            } else {
                *r
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResponseStatus::*;

    #[test]
    fn answers() {
        assert_eq!(
            answer(RequestStatus::Open, Pending, &Answer::Accept),
            Ok(Accepted)
        );
        assert_eq!(
            answer(
                RequestStatus::Open,
                Pending,
                &Answer::Refuse("pas de place".into())
            ),
            Ok(Refused)
        );
        assert_eq!(
            answer(RequestStatus::Open, Pending, &Answer::Refuse("  ".into())),
            Err(OrientationError::ReasonRequired)
        );
        assert_eq!(
            answer(RequestStatus::Open, Accepted, &Answer::Accept),
            Err(OrientationError::AlreadyAnswered)
        );
        assert_eq!(
            answer(RequestStatus::Confirmed, Pending, &Answer::Accept),
            Err(OrientationError::NotOpen)
        );
        assert_eq!(
            answer(RequestStatus::Cancelled, Pending, &Answer::Accept),
            Err(OrientationError::NotOpen)
        );
    }

    #[test]
    fn the_confirmed_acceptance_closes_the_others() {
        let r = [Refused, Accepted, Pending, Accepted];
        assert_eq!(
            confirm(RequestStatus::Open, &r, 1),
            Ok(vec![Refused, Chosen, Closed, Closed])
        );
        assert_eq!(
            confirm(RequestStatus::Open, &r, 0),
            Err(OrientationError::NotAccepted)
        );
        assert_eq!(
            confirm(RequestStatus::Open, &r, 2),
            Err(OrientationError::NotAccepted)
        );
        assert_eq!(
            confirm(RequestStatus::Open, &r, 9),
            Err(OrientationError::NotAccepted)
        );
        assert_eq!(
            confirm(RequestStatus::Confirmed, &r, 1),
            Err(OrientationError::NotOpen)
        );
        assert_eq!(
            cancel(RequestStatus::Open, &r),
            Ok(vec![Refused, Closed, Closed, Closed])
        );
        assert_eq!(
            cancel(RequestStatus::Cancelled, &r),
            Err(OrientationError::NotOpen)
        );
    }

    #[test]
    fn recipients_and_codes() {
        assert_eq!(
            check_recipients::<u8>(&[]),
            Err(OrientationError::Recipients)
        );
        assert_eq!(
            check_recipients(&[1, 2, 1]),
            Err(OrientationError::Recipients)
        );
        assert_eq!(check_recipients(&[1, 2]), Ok(()));
        for s in [Pending, Accepted, Refused, Chosen, Closed] {
            assert_eq!(ResponseStatus::from_code(s.code()), Some(s));
        }
        for s in [
            RequestStatus::Open,
            RequestStatus::Confirmed,
            RequestStatus::Cancelled,
        ] {
            assert_eq!(RequestStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(TargetType::from_code("had"), Some(TargetType::Had));
        assert_eq!(TargetType::from_code("x"), None);
        assert_eq!(RequestStatus::from_code("x"), None);
    }
}
