# bash completion for pachctl. Load it in this shell:   source <(pachctl completion bash)
# or for every shell:   pachctl completion bash > ~/.local/share/bash-completion/completions/pachctl
_pachctl() {
    local out code
    COMPREPLY=()
    out=$(command "${COMP_WORDS[0]}" __complete "$COMP_CWORD" "${COMP_WORDS[@]}" 2>/dev/null)
    code=$?
    if [ "$code" -eq 4 ]; then  # pachctl asks for local file names
        mapfile -t COMPREPLY < <(compgen -f -- "${COMP_WORDS[COMP_CWORD]}")
        compopt -o filenames 2>/dev/null
    elif [ -n "$out" ]; then
        mapfile -t COMPREPLY <<< "$out"
        if [ "${#COMPREPLY[@]}" -eq 1 ] && [ "${COMPREPLY[0]%/}" != "${COMPREPLY[0]}" ]; then
            compopt -o nospace 2>/dev/null  # a directory in pfs: keep typing inside it
        fi
    fi
    return 0
}
complete -F _pachctl pachctl
