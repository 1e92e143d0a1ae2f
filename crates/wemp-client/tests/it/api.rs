use crate::setup;
