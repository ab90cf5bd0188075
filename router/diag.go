package router

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics prints diags in the compiler style editors understand:
//
//	FILE:LINE:COL: error: SUMMARY: DETAIL
//	   LINE | source line
//	        |     ^^^^
//
// files maps file names to their source (Config.Files); a diagnostic whose
// file is unknown is printed without the source excerpt. It returns the
// first write error.
func WriteDiagnostics(w io.Writer, files map[string][]byte, diags hcl.Diagnostics) error {
	bw := bufio.NewWriter(w)
	for _, d := range diags {
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		msg = strings.ReplaceAll(msg, "\n", "; ") // one line per diagnostic
		if d.Subject == nil {
			fmt.Fprintf(bw, "%s: %s\n", sev, msg)
			continue
		}
		r := *d.Subject
		fmt.Fprintf(bw, "%s:%d:%d: %s: %s\n", r.Filename, r.Start.Line, r.Start.Column, sev, msg)
		src, ok := files[r.Filename]
		if !ok {
			continue
		}
		line := sourceLine(src, r.Start.Line)
		fmt.Fprintf(bw, "%5d | %s\n", r.Start.Line, line)
		width := 1
		if r.End.Line == r.Start.Line && r.End.Column > r.Start.Column {
			width = r.End.Column - r.Start.Column
		}
		// Columns count characters; tabs in the prefix are kept so the caret lines up.
		prefix := []rune(line)
		pad := make([]rune, 0, r.Start.Column)
		for i := 0; i < r.Start.Column-1 && i < len(prefix); i++ {
			if prefix[i] == '\t' {
				pad = append(pad, '\t')
			} else {
				pad = append(pad, ' ')
			}
		}
		fmt.Fprintf(bw, "      | %s%s\n", string(pad), strings.Repeat("^", width))
	}
	return bw.Flush()
}

func sourceLine(src []byte, n int) string {
	for i := 1; i < n; i++ {
		j := bytes.IndexByte(src, '\n')
		if j < 0 {
			return ""
		}
		src = src[j+1:]
	}
	if j := bytes.IndexByte(src, '\n'); j >= 0 {
		src = src[:j]
	}
	return strings.TrimRight(string(src), "\r")
}
