// An empty stand-in for inet.af/wf, which only bosh-agent's Windows firewall
// code imports: the module proxy does not serve it, and the Linux agent never
// compiles that code.
module inet.af/wf

go 1.21
