package cli

import "testing"

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "500MB", want: 500_000_000},
		{in: "500 mb", want: 500_000_000},
		{in: "2GiB", want: 2 << 30},
		{in: "1.5G", want: 1_500_000_000},
		{in: "1.0 GiB", want: 1 << 30}, // as HumanSize writes it
		{in: "64Ki", want: 64 << 10},
		{in: " 3 TB ", want: 3_000_000_000_000},
		{in: "", bad: true},
		{in: "GiB", bad: true},
		{in: "-1GB", bad: true},
		{in: "5XB", bad: true},
		{in: "1e9", bad: true},
		{in: "1.2.3MB", bad: true},
		{in: "9999999TiB", bad: true},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.bad {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		}
	}
}
