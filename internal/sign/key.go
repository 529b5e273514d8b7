package sign

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"os"

	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	sgsign "github.com/sigstore/sigstore-go/pkg/sign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// Key is a private signing key: ECDSA P-256 or Ed25519.
type Key struct {
	signer crypto.Signer
	alg    signature.AlgorithmDetails
}

// LoadKey reads a private key file; see ParseKey. password is called
// only for an encrypted key.
func LoadKey(path string, password func() ([]byte, error)) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading key: %w", err)
	}
	k, err := ParseKey(data, password)
	if err != nil {
		return nil, fmt.Errorf("reading key %s: %w", path, err)
	}
	return k, nil
}

// ErrKeyPassword is returned when an encrypted key does not decrypt.
var ErrKeyPassword = errors.New("the key does not decrypt with the password given (COSIGN_PASSWORD)")

// ParseKey reads a PEM private key: cosign's encrypted key file
// (cosign generate-key-pair, "ENCRYPTED SIGSTORE PRIVATE KEY" or the older
// "ENCRYPTED COSIGN PRIVATE KEY", decrypted with password), or an
// unencrypted PKCS#8 or SEC 1 ECDSA P-256 or Ed25519 key.
func ParseKey(pemBytes []byte, password func() ([]byte, error)) (*Key, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("not a PEM private key")
	}
	var pf cryptoutils.PassFunc
	switch block.Type {
	case string(cryptoutils.EncryptedSigstorePrivateKeyPEMType), "ENCRYPTED COSIGN PRIVATE KEY", "ENCRYPTED PRIVATE KEY":
		if password == nil {
			return nil, errors.New("the key is encrypted; set COSIGN_PASSWORD")
		}
		pf = func(bool) ([]byte, error) {
			p, err := password()
			if p == nil && err == nil {
				p = []byte{}
			}
			return p, err
		}
	case "PRIVATE KEY", "EC PRIVATE KEY":
	default:
		return nil, fmt.Errorf("a PEM block of type %q is not a private key slipway signs with (cosign key, PKCS#8 or EC PRIVATE KEY)", block.Type)
	}
	priv, err := cryptoutils.UnmarshalPEMToPrivateKey(pemBytes, pf)
	if err != nil {
		if pf != nil {
			// The library's error says only that decryption failed; it
			// never carries the password, but say what to do instead.
			return nil, ErrKeyPassword
		}
		return nil, fmt.Errorf("parsing private key: %w", err)
	}
	return NewKey(priv)
}

// NewKey wraps an ECDSA P-256 or Ed25519 private key.
func NewKey(priv crypto.PrivateKey) (*Key, error) {
	var details protocommon.PublicKeyDetails
	var signer crypto.Signer
	switch k := priv.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("ECDSA keys must use P-256, not %s", k.Curve.Params().Name)
		}
		details, signer = protocommon.PublicKeyDetails_PKIX_ECDSA_P256_SHA_256, k
	case ed25519.PrivateKey:
		details, signer = protocommon.PublicKeyDetails_PKIX_ED25519, k
	case *ed25519.PrivateKey:
		details, signer = protocommon.PublicKeyDetails_PKIX_ED25519, *k
	default:
		return nil, fmt.Errorf("a %T key is not one slipway signs with (ECDSA P-256 or Ed25519)", priv)
	}
	alg, err := signature.GetAlgorithmDetails(details)
	if err != nil {
		return nil, err
	}
	return &Key{signer: signer, alg: alg}, nil
}

// Public returns the public key.
func (k *Key) Public() crypto.PublicKey { return k.signer.Public() }

// PublicPEM returns the public key as PEM, as `cosign verify --key` reads it.
func (k *Key) PublicPEM() ([]byte, error) {
	return cryptoutils.MarshalPublicKeyToPEM(k.signer.Public())
}

// keypair adapts a Key to sigstore-go's signing interface.
type keypair struct {
	k    *Key
	hint []byte
}

var _ sgsign.Keypair = (*keypair)(nil)

func newKeypair(k *Key) (*keypair, error) {
	der, err := x509.MarshalPKIXPublicKey(k.signer.Public())
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &keypair{k: k, hint: []byte(base64.StdEncoding.EncodeToString(sum[:]))}, nil
}

func (p *keypair) GetHashAlgorithm() protocommon.HashAlgorithm {
	return p.k.alg.GetProtoHashType()
}

func (p *keypair) GetSigningAlgorithm() protocommon.PublicKeyDetails {
	return p.k.alg.GetSignatureAlgorithm()
}

func (p *keypair) GetHint() []byte { return p.hint }

func (p *keypair) GetKeyAlgorithm() string {
	switch p.k.alg.GetKeyType() {
	case signature.ECDSA:
		return "ECDSA"
	case signature.ED25519:
		return "ED25519"
	}
	return ""
}

func (p *keypair) GetPublicKey() crypto.PublicKey { return p.k.signer.Public() }

func (p *keypair) GetPublicKeyPem() (string, error) {
	b, err := p.k.PublicPEM()
	return string(b), err
}

// SignData signs data and returns the signature and what was signed: the
// digest for ECDSA, the data itself for pure Ed25519, which hashes as it
// signs.
func (p *keypair) SignData(_ context.Context, data []byte) ([]byte, []byte, error) {
	h := p.k.alg.GetHashType()
	signed := data
	if h != crypto.Hash(0) {
		d := h.New()
		d.Write(data)
		signed = d.Sum(nil)
	}
	sig, err := p.k.signer.Sign(rand.Reader, signed, h)
	if err != nil {
		return nil, nil, fmt.Errorf("signing: %w", err)
	}
	return sig, signed, nil
}
