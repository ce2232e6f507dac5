//! `port CTR [PORT[/PROTO]]`: the container's published ports, as Docker prints them.

use anyhow::Result;

use crate::cli::front::PortArgs;
use crate::front::containers::Store;
use crate::front::Globals;

pub(crate) fn port(g: &Globals, a: &PortArgs) -> Result<i32> {
    let store = Store::new(g);
    let c = store.get(&a.container)?;
    for l in crate::front::network::show::port_lines(&store, &c.rec, a.port.as_deref())? {
        println!("{l}");
    }
    Ok(0)
}
