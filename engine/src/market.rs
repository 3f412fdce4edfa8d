//! The market directory: finding what is for sale among the listings a peer holds, by words of
//! its title and a highest price, without walking the city's stalls.

use crate::trade::ListingView;

/// The most words a search keeps (the rest are ignored).
pub const MAX_QUERY_WORDS: usize = 8;

/// What a person looks for: every word in the title (in any order and case), at most a price.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MarketQuery {
    /// Words the title must contain, lower-cased.
    pub words: Vec<String>,
    /// The highest price, in satoshis.
    pub max_sats: Option<u64>,
}

impl MarketQuery {
    /// Reads what was typed: words, and a highest price as `under N`, `<N`, `<=N` or `≤N`
    /// (`N` in satoshis, `k` for thousands: `under 20k`). A price that does not read as a
    /// number is a word like any other.
    pub fn parse(text: &str) -> Self {
        let mut query = Self::default();
        let mut tokens = text.split_whitespace().peekable();
        while let Some(token) = tokens.next() {
            let token = token.to_lowercase();
            let price = if token == "under" {
                tokens.peek().and_then(|next| sats(next)).inspect(|_| {
                    tokens.next();
                })
            } else {
                ["<=", "≤", "<"].iter().find_map(|sign| token.strip_prefix(sign)).and_then(sats)
            };
            match price {
                Some(price) => query.max_sats = Some(query.max_sats.map_or(price, |max| max.min(price))),
                None if query.words.len() < MAX_QUERY_WORDS => query.words.push(token),
                None => {}
            }
        }
        query
    }

    /// Whether `view`'s listing is what is looked for.
    pub fn matches(&self, view: &ListingView) -> bool {
        let title = view.listing.title.text().unwrap_or_default().to_lowercase();
        self.words.iter().all(|word| title.contains(word.as_str()))
            && self.max_sats.is_none_or(|max| view.listing.price_sats <= max)
    }
}

/// `12000`, `12_000`, `12,000` or `12k` as satoshis.
fn sats(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|c| !matches!(c, '_' | ',')).collect();
    match digits.strip_suffix('k') {
        Some(thousands) => thousands.parse::<u64>().ok()?.checked_mul(1000),
        None => digits.parse().ok(),
    }
}

/// The listings for sale (`open`) that `query` matches, cheapest first (then by title, then by
/// id, so that every peer lists them alike), at most `limit`.
pub fn search<'a>(
    listings: &'a [ListingView],
    open: impl Fn(&ListingView) -> bool,
    query: &MarketQuery,
    limit: usize,
) -> Vec<&'a ListingView> {
    let mut found: Vec<&ListingView> = listings.iter().filter(|view| open(view) && query.matches(view)).collect();
    found.sort_by(|a, b| {
        let key = |view: &&ListingView| {
            (view.listing.price_sats, view.listing.title.text().unwrap_or_default().to_lowercase())
        };
        key(a).cmp(&key(b)).then_with(|| a.id.cmp(&b.id))
    });
    found.truncate(limit);
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trade::{Listing, PayTo, Title};
    use crate::{ChangeId, ModelRef, ParcelCoord, PublicKey};
    use glam::Vec3;

    fn view(id: u8, title: &str, price_sats: u64) -> ListingView {
        ListingView {
            id: ChangeId([id; 32]),
            seller: PublicKey::from_secret_seed(&[id; 32]),
            parcel: ParcelCoord { x: 0, z: 0 },
            listing: Listing {
                item: ModelRef { hash: [id; 32], bytes: 1000, triangles: 12, min: [0.0; 3], max: [1.0; 3] },
                title: Title::new(title).expect("a title"),
                price_sats,
                pay_to: PayTo::new(&[0, 20, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9])
                    .expect("a script"),
                confirmations: 1,
                spot: Vec3::ZERO,
            },
            withdrawn_at: None,
            claims: Vec::new(),
            paid: Vec::new(),
        }
    }

    #[test]
    fn words_and_a_highest_price_are_read() {
        assert_eq!(
            MarketQuery::parse("Crystal  LAMP under 20k"),
            MarketQuery { words: vec!["crystal".into(), "lamp".into()], max_sats: Some(20_000) }
        );
        assert_eq!(MarketQuery::parse("lamp <=12,000").max_sats, Some(12_000));
        assert_eq!(MarketQuery::parse("lamp ≤500 <900").max_sats, Some(500), "the lower of two prices");
        assert_eq!(MarketQuery::parse("under the sea").words, vec!["under", "the", "sea"], "no price there");
        assert_eq!(MarketQuery::parse("a b c d e f g h i j").words.len(), MAX_QUERY_WORDS);
        assert_eq!(MarketQuery::parse("lamp under 99999999999999999999k").max_sats, None, "too large to be a price");
        assert_eq!(MarketQuery::parse(""), MarketQuery::default());
    }

    #[test]
    fn what_is_open_and_matches_comes_cheapest_first() {
        let listings = vec![
            view(1, "Crystal lamp", 30_000),
            view(2, "Oak chair", 12_000),
            view(3, "Lamp of crystal", 8_000),
            view(4, "Crystal vase", 5_000),
            view(5, "crystal LAMP", 8_000),
        ];
        let all = |_: &ListingView| true;
        let ids = |found: Vec<&ListingView>| found.iter().map(|view| view.id.0[0]).collect::<Vec<u8>>();
        let query = MarketQuery::parse("lamp crystal");
        assert_eq!(ids(search(&listings, all, &query, 10)), vec![5, 3, 1], "every word, any order and case");
        assert_eq!(ids(search(&listings, all, &MarketQuery::parse("lamp under 10k"), 10)), vec![5, 3]);
        assert_eq!(
            ids(search(&listings, all, &MarketQuery::default(), 2)),
            vec![4, 5],
            "at most the limit, ties by title"
        );
        let sold = |view: &ListingView| view.id.0[0] != 3;
        assert_eq!(ids(search(&listings, sold, &query, 10)), vec![5, 1], "only what is open");
        assert!(search(&listings, all, &MarketQuery::parse("sofa"), 10).is_empty());
    }
}
