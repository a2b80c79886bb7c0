//! The simulated marketplace: a few users, the channels between them with
//! their history, and each user's listings; what the chat-api read calls
//! answer and the send call appends to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde_json::{Value, json};

use crate::config::ChototSimConfig;

use super::SEED_EPOCH_MS;

#[derive(Debug, Clone, Serialize)]
pub(super) struct Message {
    pub(super) id: String,
    pub(super) channel_id: String,
    pub(super) sender_id: String,
    pub(super) message: String,
    #[serde(rename = "type")]
    pub(super) kind: &'static str,
    pub(super) created_at: i64,
}

#[derive(Debug, Clone)]
pub(super) struct Channel {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) item_id: String,
    pub(super) item_name: String,
    pub(super) item_price: i64,
    pub(super) members: Vec<String>,
    pub(super) created_at: i64,
    pub(super) messages: Vec<Message>,
}

impl Channel {
    pub(super) fn document(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "item_id": self.item_id,
            "item_name": self.item_name,
            "item_price": self.item_price,
            "external_channel_id": format!("legacy-{}", self.id),
            "members": self.members,
            "created_at": self.created_at,
        })
    }
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct Product {
    pub(super) id: String,
    pub(super) title: String,
    pub(super) price: i64,
    pub(super) currency: &'static str,
    pub(super) image_url: String,
    pub(super) url: String,
}

/// The marketplace: users by id (with their names), their listings, the
/// channels and their messages.
#[derive(Debug)]
pub(crate) struct Store {
    pub(super) inner: Mutex<Data>,
}

#[derive(Debug, Default)]
pub(super) struct Data {
    pub(super) users: BTreeMap<String, String>,
    pub(super) products: HashMap<String, Vec<Product>>,
    pub(super) channels: BTreeMap<String, Channel>,
    pub(super) next_message: u64,
}

impl Data {
    pub(super) fn message_id(&mut self) -> String {
        self.next_message += 1;
        format!("msg-{:08}", self.next_message)
    }
}

pub(super) fn product(id: &str, title: &str, price: i64) -> Product {
    Product {
        id: id.to_owned(),
        title: title.to_owned(),
        price,
        currency: "VND",
        image_url: format!("https://cdn.chotot.sim/images/{id}.jpg"),
        url: format!("https://www.chotot.sim/{id}.htm"),
    }
}

/// id, listing id, listing, price, members, then (sender, text) lines;
/// "shop" as a sender is our shop.
type SeedChannel<'a> = (
    &'a str,
    &'a str,
    &'a str,
    i64,
    [&'a str; 2],
    &'a [(&'a str, &'a str)],
);

impl Store {
    /// Three people and our shop (`config.bot_user_id`): the shop sells
    /// seven things (more than one page at the default test page size of
    /// three), Hoa two, Minh none; Minh and Hoa each talk to the shop about
    /// one listing, and to each other about Hoa's.
    pub(crate) fn seeded(config: &ChototSimConfig) -> Self {
        let shop = config.bot_user_id.clone();
        let mut data = Data::default();
        for (id, name) in [
            (shop.as_str(), "Chat4All Shop"),
            ("5001", "Lan"),
            ("5002", "Minh"),
            ("5003", "Hoa"),
        ] {
            data.users.insert(id.to_owned(), name.to_owned());
        }
        data.products.insert(
            shop.clone(),
            vec![
                product("ad-7001", "Honda Vision 2020", 18_500_000),
                product("ad-7002", "iPhone 13 128GB", 11_900_000),
                product("ad-7003", "Tủ lạnh Panasonic 290L", 6_200_000),
                product("ad-7004", "Xe đạp Giant ATX", 4_300_000),
                product("ad-7005", "Laptop Dell XPS 13", 17_000_000),
                product("ad-7006", "Máy giặt LG 9kg", 5_500_000),
                product("ad-7007", "Sofa da 3 chỗ", 7_800_000),
            ],
        );
        data.products.insert(
            "5003".to_owned(),
            vec![
                product("ad-8001", "Yamaha Exciter 150", 32_000_000),
                product("ad-8002", "Nồi chiên không dầu", 900_000),
            ],
        );
        data.products.insert("5001".to_owned(), Vec::new());
        data.products.insert("5002".to_owned(), Vec::new());

        let seeds: [SeedChannel<'_>; 3] = [
            (
                "ch-1001",
                "ad-7001",
                "Honda Vision 2020",
                18_500_000,
                ["5002", shop.as_str()],
                &[
                    ("5002", "Chào shop, xe còn không ạ?"),
                    ("shop", "Dạ còn bạn ơi"),
                    ("5002", "Xe đi được bao nhiêu km rồi?"),
                    ("shop", "Khoảng 12.000 km"),
                    ("5002", "Giá có bớt không shop?"),
                ],
            ),
            (
                "ch-1002",
                "ad-7002",
                "iPhone 13 128GB",
                11_900_000,
                ["5003", shop.as_str()],
                &[
                    ("5003", "Máy còn bảo hành không?"),
                    ("shop", "Còn 3 tháng bạn nhé"),
                ],
            ),
            (
                "ch-1003",
                "ad-8001",
                "Yamaha Exciter 150",
                32_000_000,
                ["5002", "5003"],
                &[("5002", "Exciter còn không bạn?")],
            ),
        ];
        for (n, (id, item_id, item_name, item_price, members, lines)) in seeds.into_iter().enumerate() {
            let start = SEED_EPOCH_MS + (n as i64) * 3_600_000;
            let mut channel = Channel {
                id: id.to_owned(),
                name: format!(
                    "{item_name} - {}",
                    data.users.get(members[0]).cloned().unwrap_or_default()
                ),
                item_id: item_id.to_owned(),
                item_name: item_name.to_owned(),
                item_price,
                members: members.iter().map(|m| (*m).to_owned()).collect(),
                created_at: start,
                messages: Vec::new(),
            };
            for (k, (sender, text)) in lines.iter().enumerate() {
                let sender = if *sender == "shop" { shop.as_str() } else { sender };
                channel.messages.push(Message {
                    id: data.message_id(),
                    channel_id: id.to_owned(),
                    sender_id: sender.to_owned(),
                    message: (*text).to_owned(),
                    kind: "text",
                    created_at: start + (k as i64 + 1) * 60_000,
                });
            }
            data.channels.insert(id.to_owned(), channel);
        }
        Self {
            inner: Mutex::new(data),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Data> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
