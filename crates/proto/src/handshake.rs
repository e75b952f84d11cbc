//! Hello and welcome, written once for every transport: the client's first message and how it
//! reads the answer; the server's reading of a first message, its admission rules and its
//! answer.

use crate::messages::{envelope::Body, error::Code, Envelope, Error, Hello, Welcome};
use crate::wire::{envelope, PROTOCOL_VERSION};
use crate::ProtoError;

/// The client's first message.
pub fn hello(token: &str, client_name: &str, device_class: &str) -> Envelope {
    envelope(Body::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        token: token.to_string(),
        client_name: client_name.to_string(),
        device_class: device_class.to_string(),
    }))
}

/// The client's reading of the server's answer to its hello (`None`: the stream ended).
pub fn read_welcome(reply: Option<Envelope>) -> Result<Welcome, ProtoError> {
    match reply.ok_or(ProtoError::Closed)?.body {
        Some(Body::Welcome(w)) if w.protocol_version == PROTOCOL_VERSION => Ok(w),
        Some(Body::Welcome(w)) => Err(ProtoError::Protocol(format!(
            "the server welcomed us in protocol version {}; this client speaks {PROTOCOL_VERSION}",
            w.protocol_version
        ))),
        Some(Body::Error(e)) => Err(match ProtoError::remote(e) {
            ProtoError::Remote { message, .. } => ProtoError::Refused(message),
            other => other,
        }),
        other => Err(ProtoError::Protocol(format!(
            "expected a welcome, got {other:?}"
        ))),
    }
}

/// What a server does with a client's first message.
#[derive(Debug)]
pub enum FirstMessage {
    /// A hello: decide with [`admission`] (and the server's own limits), then [`answer`].
    Hello(Hello),
    /// Anything else: send `reply` (when there is one) and close.
    Refuse {
        reply: Option<Envelope>,
        error: ProtoError,
    },
}

/// The server's reading of a client's first message (`None`: the client left first).
pub fn read_hello(first: Option<Envelope>) -> FirstMessage {
    match first.map(|e| e.body) {
        Some(Some(Body::Hello(h))) => FirstMessage::Hello(h),
        None => FirstMessage::Refuse {
            reply: None,
            error: ProtoError::Closed,
        },
        Some(other) => FirstMessage::Refuse {
            reply: Some(crate::error_message(
                Code::BadRequest,
                0,
                "the first message must be a hello",
            )),
            error: ProtoError::Protocol(format!("the client opened with {other:?}")),
        },
    }
}

/// The protocol's admission rules: the version, and the token when the server has one.
pub fn admission(hello: &Hello, token: Option<&str>) -> Result<(), Error> {
    if hello.protocol_version != PROTOCOL_VERSION {
        return Err(refusal(
            Code::Version,
            format!(
                "protocol version {} is not supported; this server speaks {PROTOCOL_VERSION}",
                hello.protocol_version
            ),
        ));
    }
    if let Some(token) = token {
        if hello.token != token {
            return Err(refusal(Code::Unauthorized, "wrong token".into()));
        }
    }
    Ok(())
}

/// A refusal of a whole session (`seq` 0).
pub fn refusal(code: Code, message: String) -> Error {
    Error {
        code: code as i32,
        seq: 0,
        message,
    }
}

/// The server's answer to an admitted or refused hello, and whether the session goes on.
pub fn answer(admission: Result<Welcome, Error>) -> (Envelope, Result<(), ProtoError>) {
    match admission {
        Ok(welcome) => (envelope(Body::Welcome(welcome)), Ok(())),
        Err(e) => {
            let message = e.message.clone();
            (envelope(Body::Error(e)), Err(ProtoError::Refused(message)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn welcome() -> Welcome {
        Welcome {
            protocol_version: PROTOCOL_VERSION,
            server_name: "edge".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_hello_with_the_right_token_is_welcomed() {
        let FirstMessage::Hello(h) = read_hello(Some(hello("secret", "phone", "oneplus-3t")))
        else {
            panic!("a hello is a hello");
        };
        assert_eq!(admission(&h, Some("secret")), Ok(()));
        let (reply, goes_on) = answer(Ok(welcome()));
        assert_eq!(goes_on, Ok(()));
        assert_eq!(read_welcome(Some(reply)).unwrap().server_name, "edge");
    }

    #[test]
    fn wrong_token_and_version_are_refused_with_their_reason() {
        let FirstMessage::Hello(mut h) = read_hello(Some(hello("guess", "phone", "x"))) else {
            panic!("a hello is a hello");
        };
        let refused = admission(&h, Some("secret")).unwrap_err();
        assert_eq!(refused.code, Code::Unauthorized as i32);
        let (reply, goes_on) = answer(Err(refused));
        assert_eq!(goes_on, Err(ProtoError::Refused("wrong token".into())));
        assert_eq!(
            read_welcome(Some(reply)),
            Err(ProtoError::Refused("wrong token".into()))
        );
        h.protocol_version = 2;
        assert_eq!(admission(&h, None).unwrap_err().code, Code::Version as i32);
    }

    #[test]
    fn anything_but_a_hello_first_is_refused() {
        let ping = envelope(Body::Ping(Default::default()));
        let FirstMessage::Refuse { reply, error } = read_hello(Some(ping)) else {
            panic!("a ping is not a hello");
        };
        assert!(matches!(error, ProtoError::Protocol(_)));
        assert!(reply.is_some());
        assert!(matches!(
            read_hello(None),
            FirstMessage::Refuse {
                reply: None,
                error: ProtoError::Closed
            }
        ));
        assert_eq!(read_welcome(None), Err(ProtoError::Closed));
    }
}
