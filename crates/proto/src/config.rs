//! The one configuration value on the wire: [`deepoffload_core::Config`] becomes a
//! [`messages::Config`] with `From`, and comes back with `TryFrom` (a peer's placement may be
//! unset or unknown).

use crate::messages;
use deepoffload_core::{Config, Placement};

impl From<Placement> for messages::Placement {
    fn from(p: Placement) -> Self {
        match p {
            Placement::Local => messages::Placement::Local,
            Placement::Remote => messages::Placement::Remote,
        }
    }
}

impl TryFrom<messages::Placement> for Placement {
    type Error = String;
    fn try_from(p: messages::Placement) -> Result<Self, String> {
        match p {
            messages::Placement::Local => Ok(Placement::Local),
            messages::Placement::Remote => Ok(Placement::Remote),
            messages::Placement::Unspecified => Err("config.placement is not set".into()),
        }
    }
}

impl From<&Config> for messages::Config {
    fn from(c: &Config) -> Self {
        messages::Config {
            placement: messages::Placement::from(c.placement) as i32,
            model: c.model.clone(),
            input_size: c.input_size,
            width: c.width,
            height: c.height,
            fps: c.fps,
            bitrate_bps: c.bitrate_bps,
        }
    }
}

impl TryFrom<&messages::Config> for Config {
    type Error = String;
    fn try_from(c: &messages::Config) -> Result<Self, String> {
        let placement = messages::Placement::try_from(c.placement)
            .map_err(|_| format!("config.placement {} is not a placement", c.placement))?;
        Ok(Config {
            placement: placement.try_into()?,
            model: c.model.clone(),
            input_size: c.input_size,
            width: c.width,
            height: c.height,
            fps: c.fps,
            bitrate_bps: c.bitrate_bps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_configuration_survives_the_wire() {
        let config = Config {
            placement: Placement::Remote,
            model: "yolov4-tiny".into(),
            input_size: 416,
            width: 384,
            height: 288,
            fps: 5.0,
            bitrate_bps: 700_000,
        };
        let wire = messages::Config::from(&config);
        assert_eq!(wire.placement(), messages::Placement::Remote);
        assert_eq!(Config::try_from(&wire).unwrap(), config);
    }

    #[test]
    fn an_unset_or_unknown_placement_is_refused() {
        let mut wire = messages::Config::default();
        assert!(Config::try_from(&wire).unwrap_err().contains("not set"));
        wire.placement = 9;
        assert!(Config::try_from(&wire)
            .unwrap_err()
            .contains("not a placement"));
    }
}
