# fish completion for pachctl. Load it in this shell:   pachctl completion fish | source
# or for every shell:   pachctl completion fish > ~/.config/fish/completions/pachctl.fish
function __pachctl_complete
    set -l words (commandline -opc)
    set -l current (commandline -ct)
    set -l out (command $words[1] __complete (count $words) $words $current 2>/dev/null)
    if test $status -eq 4  # pachctl asks for local file names
        __fish_complete_path $current
        return
    end
    printf '%s\n' $out
end
complete -c pachctl -f -a '(__pachctl_complete)'
