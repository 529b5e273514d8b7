package record

// Image is the section slipway image adds: the OCI layout it wrote, the
// index digest that later steps push and promote, and one entry per
// platform with its manifest digest and SBOMs.
type Image struct {
	// Layout is the OCI image layout, relative to the record's directory.
	Layout string `json:"layout"`
	// Ref is the layout's org.opencontainers.image.ref.name for the index.
	Ref       string `json:"ref"`
	Digest    string `json:"digest"` // the image index
	MediaType string `json:"mediaType"`
	// Base names the base as given (static, scratch, a reference or
	// oci:DIR) and its digest: the index, or the one image, it resolved to.
	Base       string          `json:"base"`
	BaseDigest string          `json:"baseDigest,omitempty"`
	Entrypoint []string        `json:"entrypoint"`
	Platforms  []PlatformImage `json:"platforms"`
	// Tarball is a docker-archive of one platform, if one was asked for.
	Tarball *Tarball `json:"tarball,omitempty"`
}

// PlatformImage is one platform's image in the index.
type PlatformImage struct {
	Platform   string `json:"platform"` // os/arch[/variant]
	Digest     string `json:"digest"`   // the manifest
	Config     string `json:"config"`   // the config blob
	Size       int64  `json:"size"`     // compressed layers, config and manifest
	BaseDigest string `json:"baseDigest,omitempty"`
	SBOMs      []SBOM `json:"sboms"`
}

// SBOM is a software bill of materials written next to the record.
type SBOM struct {
	Format string `json:"format"` // spdx-2.3+json or cyclonedx-1.5+json
	// Path is relative to the record's directory.
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Tarball is a docker-archive that `docker load` reads.
type Tarball struct {
	Path     string `json:"path"` // relative to the record's directory
	Platform string `json:"platform"`
	Tag      string `json:"tag"`
	SHA256   string `json:"sha256"`
}
