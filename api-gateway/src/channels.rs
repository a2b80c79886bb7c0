//! The channel calls of the public API: checks, then the store.

use chat4all_domain::Platform;
use chat4all_proto::v1::{
    self as pb, CreateChannelRequest, CreateChannelResponse, GetChannelRequest, ListChannelsRequest,
    ListChannelsResponse, channel_info_request, get_channel_request,
};
use chat4all_store::{PutChannelOutcome, SharedStore};
use tonic::Status;

use crate::status;
use crate::validation::Violation;
use crate::vendors::Connectors;

const DEFAULT_PAGE: u32 = 50;
const MAX_PAGE: u32 = 500;

/// What a caller may not get wrong about a new channel.
fn check_new(channel: &pb::Channel) -> Vec<Violation> {
    let mut violations = Vec::new();
    let mut bad = |field, description: String| violations.push(Violation { field, description });
    if !channel.id.is_empty() {
        bad("channel.id", "is set by Chat4All; leave it empty".to_owned());
    }
    match &channel.vendor {
        None => bad("channel.vendor", "is required".to_owned()),
        Some(vendor) => {
            if let Err(e) = vendor.name.parse::<Platform>() {
                bad("channel.vendor.name", e.to_string());
            }
            if vendor.channel_id.trim().is_empty() {
                bad("channel.vendor.channel_id", "must not be empty".to_owned());
            }
        }
    }
    violations
}

/// A recipient without a `platform:` prefix names a channel: its vendor
/// decides the platform, its vendor channel id is the platform's recipient,
/// and it is the conversation unless the caller names another.
pub(crate) async fn resolve_recipient(
    store: &SharedStore,
    mut request: pb::SendMessageRequest,
) -> Result<pb::SendMessageRequest, Status> {
    let recipient = request.recipient.trim();
    if recipient.is_empty() || recipient.contains(':') {
        return Ok(request);
    }
    let channel = store
        .get_channel(recipient)
        .await
        .map_err(status::store)?
        .ok_or_else(|| {
            status::invalid_field(
                "recipient",
                format!("no channel {recipient:?}; give `platform:id` or a channel id"),
            )
        })?;
    let vendor = channel.vendor.unwrap_or_default();
    if request.conversation_id.is_empty() {
        request.conversation_id = channel.id;
    }
    request.recipient = format!("{}:{}", vendor.name, vendor.channel_id);
    Ok(request)
}

pub(crate) async fn create(
    store: &SharedStore,
    request: CreateChannelRequest,
) -> Result<CreateChannelResponse, Status> {
    let channel = request
        .channel
        .ok_or_else(|| status::invalid_field("channel", "is required"))?;
    let violations = check_new(&channel);
    if !violations.is_empty() {
        return Err(status::invalid(&violations));
    }
    let channel = pb::Channel {
        created_at: None,
        ..channel
    };
    let (outcome, stored) = store.put_channel(channel).await.map_err(status::store)?;
    Ok(CreateChannelResponse {
        channel: Some(stored),
        created: outcome == PutChannelOutcome::Created,
    })
}

pub(crate) async fn get(store: &SharedStore, request: GetChannelRequest) -> Result<pb::Channel, Status> {
    let found = match request.key {
        Some(get_channel_request::Key::ChannelId(id)) if !id.is_empty() => {
            store.get_channel(&id).await.map_err(status::store)?
        }
        Some(get_channel_request::Key::Vendor(vendor))
            if !vendor.name.is_empty() && !vendor.channel_id.is_empty() =>
        {
            store
                .find_channel(&vendor.name, &vendor.channel_id)
                .await
                .map_err(status::store)?
        }
        _ => {
            return Err(status::invalid_field(
                "key",
                "give channel_id, or vendor with name and channel_id",
            ));
        }
    };
    found.ok_or_else(|| Status::not_found("no such channel"))
}

pub(crate) async fn list(
    store: &SharedStore,
    request: ListChannelsRequest,
) -> Result<ListChannelsResponse, Status> {
    if request.page_size > MAX_PAGE {
        return Err(status::invalid_field("page_size", format!("at most {MAX_PAGE}")));
    }
    let limit = if request.page_size == 0 {
        DEFAULT_PAGE
    } else {
        request.page_size
    };
    let vendor = (!request.vendor_name.is_empty()).then_some(request.vendor_name.as_str());
    let after = (!request.page_token.is_empty()).then_some(request.page_token.as_str());
    let page = store
        .list_channels(vendor, after, limit)
        .await
        .map_err(status::store)?;
    Ok(ListChannelsResponse {
        channels: page.channels,
        next_page_token: page.next_cursor.unwrap_or_default(),
    })
}

/// The platform's view of a channel, named by our id or its vendor key.
pub(crate) async fn info(
    store: &SharedStore,
    connectors: &Connectors,
    request: pb::ChannelInfoRequest,
) -> Result<pb::ChannelInfoResponse, Status> {
    let (channel, vendor) = match request.key {
        Some(channel_info_request::Key::ChannelId(id)) if !id.is_empty() => {
            let channel = store
                .get_channel(&id)
                .await
                .map_err(status::store)?
                .ok_or_else(|| Status::not_found(format!("no channel {id:?}")))?;
            let vendor = channel.vendor.clone().unwrap_or_default();
            (Some(channel), vendor)
        }
        Some(channel_info_request::Key::Vendor(vendor))
            if !vendor.name.is_empty() && !vendor.channel_id.is_empty() =>
        {
            let channel = store
                .find_channel(&vendor.name, &vendor.channel_id)
                .await
                .map_err(status::store)?;
            (channel, vendor)
        }
        _ => {
            return Err(status::invalid_field(
                "key",
                "give channel_id, or vendor with name and channel_id",
            ));
        }
    };
    let platform: Platform = vendor
        .name
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| status::invalid_field("vendor.name", e.to_string()))?;
    let info = connectors.channel_info(platform, &vendor.channel_id).await?;
    Ok(pb::ChannelInfoResponse {
        channel,
        info: Some(info),
    })
}

/// The largest page of listings asked of a platform.
const MAX_PRODUCTS_PAGE: u32 = 100;

pub(crate) async fn user_products(
    connectors: &Connectors,
    request: pb::UserProductsRequest,
) -> Result<pb::UserProductsResponse, Status> {
    let platform: Platform = request
        .vendor_name
        .parse()
        .map_err(|e: chat4all_domain::UnknownPlatform| status::invalid_field("vendor_name", e.to_string()))?;
    if request.user_id.trim().is_empty() {
        return Err(status::invalid_field("user_id", "must not be empty"));
    }
    if request.page_size > MAX_PRODUCTS_PAGE {
        return Err(status::invalid_field(
            "page_size",
            format!("at most {MAX_PRODUCTS_PAGE}"),
        ));
    }
    let answer = connectors
        .user_products(
            platform,
            pb::ListUserProductsRequest {
                user_id: request.user_id,
                limit: request.page_size,
                page: request.page.max(1),
            },
        )
        .await?;
    Ok(pb::UserProductsResponse {
        products: answer.products,
        has_more: answer.has_more,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn channel(name: &str, channel_id: &str) -> pb::Channel {
        pb::Channel {
            vendor: Some(pb::ChannelVendor {
                channel_id: channel_id.into(),
                name: name.into(),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_new_channel_names_what_is_wrong() {
        let fields = |c: &pb::Channel| check_new(c).into_iter().map(|v| v.field).collect::<Vec<_>>();
        assert!(fields(&channel("chotot", "ch-1")).is_empty());
        assert_eq!(fields(&channel("fax", "1")), ["channel.vendor.name"]);
        assert_eq!(fields(&channel("chotot", " ")), ["channel.vendor.channel_id"]);
        assert_eq!(fields(&pb::Channel::default()), ["channel.vendor"]);
        assert_eq!(
            fields(&pb::Channel {
                id: "x".into(),
                ..channel("chotot", "1")
            }),
            ["channel.id"]
        );
    }
}
