//! The simulated WeChat callback side: signs, encrypts, retries and checks replies.
