package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// completionCmd is `duct completion`.
type completionCmd struct{}

func (c *completionCmd) info() cmdInfo {
	return cmdInfo{
		name:    "completion",
		group:   "Other",
		summary: "Print a shell completion script (bash or zsh)",
		usage:   "bash|zsh",
		help: `
Completion prints a script that teaches your shell duct's commands, flags and
flag values, and completes function names by asking the server
('duct ls -q').`,
		examples: `
source <(duct completion bash)                        # try it in this shell
duct completion bash > /etc/bash_completion.d/duct
duct completion zsh > "${fpath[1]}/_duct"             # then restart zsh`,
		complete: "bash zsh",
	}
}

func (c *completionCmd) define(fs *flagSet, e *env) {}

func (c *completionCmd) run(ctx context.Context, e *env, args []string) error {
	if err := wantArgs(args, 1, 1, "shell (bash or zsh)"); err != nil {
		return err
	}
	specs := completionSpecs()
	switch args[0] {
	case "bash":
		writeBash(e.stdout, specs)
	case "zsh":
		writeZsh(e.stdout, specs)
	default:
		return usageErrorf("unsupported shell %q: want bash or zsh", args[0])
	}
	return nil
}

// compFlag is one flag as completion sees it.
type compFlag struct {
	names   []string // "--follow", "-f"
	usage   string
	takes   bool     // takes a value
	arg     string   // the value's name in the help, e.g. "file"
	choices []string // its values, when fixed
}

// compSpec is one command as completion sees it.
type compSpec struct {
	name, summary, args string
	flags               []compFlag
}

func completionSpecs() []compSpec {
	var out []compSpec
	e := &env{server: defaultServer, getenv: func(string) string { return "" }}
	for _, c := range commands() {
		in := c.info()
		fs := newFlagSet(in.name)
		c.define(fs, e)
		s := compSpec{name: in.name, summary: in.summary, args: in.complete}
		fs.VisitAll(func(f *flag.Flag) {
			if fs.isAlias(f.Name) {
				return
			}
			arg, usage := flag.UnquoteUsage(f)
			cf := compFlag{names: []string{"--" + f.Name}, usage: usage, takes: !isBool(f), arg: arg}
			if sh, ok := fs.short[f.Name]; ok {
				cf.names = append(cf.names, "-"+sh)
			}
			if ch, ok := f.Value.(choiceFlag); ok {
				cf.choices = ch.choices
			}
			s.flags = append(s.flags, cf)
		})
		sort.Slice(s.flags, func(i, j int) bool { return s.flags[i].names[0] < s.flags[j].names[0] })
		out = append(out, s)
	}
	return out
}

func writeBash(w io.Writer, specs []compSpec) {
	var names []string
	for _, s := range specs {
		names = append(names, s.name)
	}
	fmt.Fprintf(w, `# bash completion for duct; load with: source <(duct completion bash)
_duct_functions() {
    local server= i
    for ((i = 1; i < ${#COMP_WORDS[@]}; i++)); do
        [[ ${COMP_WORDS[i]} == --server ]] && server=${COMP_WORDS[i+1]}
    done
    duct ls -q ${server:+--server "$server"} 2>/dev/null
}

_duct() {
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local cmd= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --server) ((i++)) ;;
        -*) ;;
        *) cmd=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $cmd ]]; then
        if [[ $prev == --server ]]; then return; fi
        COMPREPLY=($(compgen -W "%s --server --help --version" -- "$cur"))
        return
    fi
    local flags= args=
    case $cmd in
`, strings.Join(names, " "))
	for _, s := range specs {
		var flags []string
		var values []string
		for _, f := range s.flags {
			flags = append(flags, f.names...)
			switch {
			case len(f.choices) > 0:
				values = append(values, fmt.Sprintf("        %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;", strings.Join(f.names, "|"), strings.Join(f.choices, " ")))
			case f.takes && f.arg == "directory":
				values = append(values, fmt.Sprintf("        %s) COMPREPLY=($(compgen -d -- \"$cur\")); return ;;", strings.Join(f.names, "|")))
			case f.takes:
				// Files for file-like values; bash's default
				// completion (-o default) serves the rest.
				values = append(values, fmt.Sprintf("        %s) return ;;", strings.Join(f.names, "|")))
			}
		}
		fmt.Fprintf(w, "    %s)\n        flags=%q\n        args=%q\n", s.name, strings.Join(append(flags, "--help"), " "), s.args)
		if len(values) > 0 {
			fmt.Fprintf(w, "        case $prev in\n%s\n        esac\n", strings.Join(values, "\n"))
		}
		fmt.Fprintf(w, "        ;;\n")
	}
	fmt.Fprint(w, `    esac
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    case $args in
    function) COMPREPLY=($(compgen -W "$(_duct_functions)" -- "$cur")) ;;
    file) COMPREPLY=($(compgen -f -- "$cur")) ;;
    dir) COMPREPLY=($(compgen -d -- "$cur")) ;;
    command) COMPREPLY=($(compgen -W "`+strings.Join(names, " ")+`" -- "$cur")) ;;
    ?*) COMPREPLY=($(compgen -W "$args" -- "$cur")) ;;
    esac
}
complete -o default -F _duct duct
`)
}

// zshQuote makes s safe inside a single-quoted _arguments spec.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", `'\''`, "[", "(", "]", ")", ":", " -", "\\", "")
	return r.Replace(s)
}

func writeZsh(w io.Writer, specs []compSpec) {
	fmt.Fprint(w, `#compdef duct
# zsh completion for duct; install as _duct in a directory of $fpath.

_duct_functions() {
    local server=${opt_args[--server]}
    local -a names
    names=(${(f)"$(_call_program functions duct ls -q ${server:+--server $server} 2>/dev/null)"})
    _describe -t functions 'function' names
}

_duct() {
    local -a commands
    commands=(
`)
	for _, s := range specs {
		fmt.Fprintf(w, "        '%s:%s'\n", s.name, zshQuote(s.summary))
	}
	fmt.Fprint(w, `    )
    if (( CURRENT == 2 )); then
        _describe -t commands 'duct command' commands
        return
    fi
    local cmd=${words[2]}
    shift words
    (( CURRENT-- ))
    case $cmd in
`)
	for _, s := range specs {
		fmt.Fprintf(w, "    %s)\n        _arguments -s \\\n", s.name)
		for _, f := range s.flags {
			value := ""
			switch {
			case len(f.choices) > 0:
				value = ":value:(" + strings.Join(f.choices, " ") + ")"
			case f.takes && f.arg == "directory":
				value = ":" + f.arg + ":_files -/"
			case f.takes && (f.arg == "file" || f.arg == "STRING"):
				value = ":" + f.arg + ":_files"
			case f.takes:
				value = ":" + f.arg + ": "
			}
			for _, n := range f.names {
				fmt.Fprintf(w, "            '%s[%s]%s' \\\n", n, zshQuote(f.usage), value)
			}
		}
		switch s.args {
		case "":
		case "function":
			rep := "1"
			if s.name == "rm" {
				rep = "*"
			}
			fmt.Fprintf(w, "            '%s:function:_duct_functions' \\\n", rep)
		case "file":
			fmt.Fprint(w, "            '1:path:_files' \\\n")
		case "dir":
			fmt.Fprint(w, "            '1:directory:_files -/' \\\n")
		case "command":
			fmt.Fprint(w, "            '1:command:(("+commandWords(specs)+"))' \\\n")
		default:
			fmt.Fprintf(w, "            '1:argument:(%s)' \\\n", s.args)
		}
		fmt.Fprint(w, "            '(- *)'{-h,--help}'[show help]'\n        ;;\n")
	}
	fmt.Fprint(w, `    esac
}

_duct "$@"
`)
}

// commandWords lists commands with their summaries for a zsh (( )) spec.
func commandWords(specs []compSpec) string {
	var out []string
	for _, s := range specs {
		out = append(out, s.name+`\:`+strings.ReplaceAll(zshQuote(s.summary), " ", `\ `))
	}
	return strings.Join(out, " ")
}
