function _keymgmt_completion;
    set -l response (env _KEYMGMT_COMPLETE=fish_complete COMP_WORDS=(commandline -cp) COMP_CWORD=(commandline -t) keymgmt);

    for completion in $response;
        set -l metadata (string split -m 1 "," -- $completion);
        if test $metadata[1] = "plain";
            echo $metadata[2];
        end;
    end;
end;

complete --no-files --command keymgmt --arguments "(_keymgmt_completion)";
