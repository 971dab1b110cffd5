//! Sockets: the ZMTP guard, links, the mesh task.
