//! The zcrx registration fixture.
