//! Small constructors for the nftables JSON expressions the daemon uses, so
//! rule builders read like the `nft` rules they render.

use std::borrow::Cow;

use nftables::expr::{CT, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadField, Prefix};
use nftables::stmt::{Match, Operator, Statement};

pub(crate) fn s(value: impl Into<String>) -> Expression<'static> {
    Expression::String(Cow::Owned(value.into()))
}

pub(crate) fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}

pub(crate) fn payload(protocol: &'static str, field: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(PayloadField {
        protocol: protocol.into(),
        field: field.into(),
    })))
}

pub(crate) fn ct(key: &'static str) -> Expression<'static> {
    Expression::Named(NamedExpression::CT(CT { key: key.into(), family: None, dir: None }))
}

pub(crate) fn prefix(addr: impl Into<String>, len: u8) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix { addr: Box::new(s(addr)), len: u32::from(len) }))
}

pub(crate) fn matches(left: Expression<'static>, op: Operator, right: Expression<'static>) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}

pub(crate) fn eq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::EQ, right)
}

pub(crate) fn neq(left: Expression<'static>, right: Expression<'static>) -> Statement<'static> {
    matches(left, Operator::NEQ, right)
}

/// `ct state established,related`
pub(crate) fn established() -> Statement<'static> {
    matches(ct("state"), Operator::IN, Expression::List(vec![s("established"), s("related")]))
}
