#compdef pachctl
# zsh completion for pachctl. Load it in this shell:   source <(pachctl completion zsh)
# or for every shell: pachctl completion zsh > "${fpath[1]}/_pachctl"   (with compinit in ~/.zshrc)
_pachctl() {
    local out ret
    local -a items
    out="$(command "${words[1]}" __complete $((CURRENT - 1)) "${words[@]}" 2>/dev/null)"
    ret=$?
    if (( ret == 4 )); then  # pachctl asks for local file names
        _files
        return
    fi
    items=("${(@f)out}")
    items=(${items:#})  # no empty candidate when there are none
    (( ${#items} )) || return 1
    local -a dirs plain
    dirs=(${(M)items:#*/})
    plain=(${items:#*/})
    (( ${#plain} )) && compadd -Q -- "${plain[@]}"
    (( ${#dirs} )) && compadd -Q -S '' -- "${dirs[@]}"
    return 0
}
if [[ "${funcstack[1]}" == _pachctl ]]; then
    _pachctl "$@"  # autoloaded from fpath
elif (( $+functions[compdef] )); then
    compdef _pachctl pachctl
fi
