// Stand-in for inet.af/wf, a Windows-only dependency of bosh-agent that the
// module proxy does not serve; no package of it is built here.
module inet.af/wf

go 1.23
