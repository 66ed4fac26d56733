//! What the operator keeps of the pods it watches: each pod stripped to
//! what reconciles read ([`pod`]), and their names by cluster ([`index`]).

pub mod index;
pub mod pod;
